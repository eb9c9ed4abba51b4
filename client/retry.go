package client

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"

	"github.com/nitro-signer/nitro-signer/api"
)

// A verdict is what a call does after one attempt.
type verdict uint8

const (
	// done: return the attempt's error (nil: its success).
	done verdict = iota
	// elsewhere: the replica failed (no answer, a 503, a refused
	// attestation or answer): try another, spending a retry token.
	elsewhere
	// resign: the enclave refused the request as signed for another
	// instance (wrong_enclave): sign again for the one that refused and
	// send to the same replica, once per call, spending no token.
	resign
	// behind: the enclave does not hold the epoch asked for
	// (unknown_epoch), as a replica behind the fleet answers: try one
	// other replica, spending a token.
	behind
)

// judge records what an attempt at r says about r's health and returns
// what the call does next, with the kid of the instance that refused it
// for resign.
func (c *Client) judge(ctx context.Context, r *replica, err error, signer string) (verdict, string, error) {
	log := c.cfg.Logger
	if err == nil {
		r.ok(log)
		return done, "", nil
	}
	var refusal *api.Error
	switch {
	case errors.As(err, &refusal):
		// Signed by the enclave: the replica answers.
		switch refusal.Code {
		case api.CodeSignerDisabled:
			c.down(r, err)
			return elsewhere, "", err
		case api.CodeWrongEnclave:
			r.ok(log)
			return resign, signer, err
		case api.CodeUnknownEpoch:
			r.ok(log)
			return behind, "", err
		}
		r.ok(log)
		return done, "", err
	case ctx.Err() != nil:
		// The caller gave up: that says nothing about r.
		r.release()
		return done, "", err
	case replicaFailed(err):
		c.down(r, err)
		return elsewhere, "", err
	}
	r.release()
	return done, "", err
}

// replicaFailed reports whether err says a replica could not serve: no
// answer, a 503 from its parent, a document that does not satisfy the
// policy, or an answer that is not the attested enclave's.
func replicaFailed(err error) bool {
	var te *transportError
	var pe *ParentError
	return errors.As(err, &te) || (errors.As(err, &pe) && pe.Status == http.StatusServiceUnavailable) ||
		errors.Is(err, ErrAttestation) || errors.Is(err, ErrResponse)
}

// down marks r down and makes its name due for resolution.
func (c *Client) down(r *replica, err error) {
	r.fail(c.cfg.Clock(), c.retry.MinBackoff, c.retry.MaxBackoff, err, c.cfg.Logger)
	c.fleet.failed(r)
}

// failover runs attempt at one replica after another until one is done,
// within MaxAttempts and the retry budget, at pin only when pin is set.
// attempt is given the kid to sign for ("" for the replica's current
// instance) and whether it is a retry.
func (c *Client) failover(ctx context.Context, pin *replica, attempt func(r *replica, kid string, retry bool) (verdict, string, error)) error {
	c.calls.Add(1)
	c.budget.earn()
	var tried []*replica
	r, err := c.pick(ctx, pin, tried)
	if err != nil {
		return err
	}
	tried = append(tried, r)
	kid, resigned, behindTried := "", false, false
	for n := 1; ; n++ {
		v, signer, err := attempt(r, kid, n > 1)
		kid = ""
		if v == done {
			return err
		}
		if v == resign && !resigned && signer != "" && n < c.retry.MaxAttempts {
			resigned, kid = true, signer
			c.retarget(r, signer)
			c.retries.Add(1)
			continue
		}
		// A signed refusal is the enclave's answer: when no other replica
		// can be tried, it is the call's, as it is.
		answered := v == resign || v == behind
		if v == behind {
			if behindTried {
				return err
			}
			behindTried = true
		}
		stop := func(budget bool) error {
			if answered {
				return err
			}
			return &FailoverError{Attempts: n, BudgetSpent: budget, Err: err}
		}
		if n >= c.retry.MaxAttempts {
			return stop(false)
		}
		next, perr := c.pick(ctx, pin, tried)
		if perr != nil {
			return stop(false)
		}
		if !c.budget.spend() {
			next.release()
			c.denied.Add(1)
			return stop(true)
		}
		c.retries.Add(1)
		r = next
		tried = append(tried, r)
	}
}

// pick chooses the replica of an attempt: pin if set and not yet tried,
// else as the fleet spreads calls.
func (c *Client) pick(ctx context.Context, pin *replica, tried []*replica) (*replica, error) {
	if pin == nil {
		return c.fleet.pick(ctx, c.cfg.Clock(), tried, c.cfg.Logger)
	}
	if slices.Contains(tried, pin) {
		return nil, errAllTried
	}
	return pin, nil
}

// budget is the client's retry token bucket: it holds at most burst
// tokens and starts full; each call earns ratio, each retry spends one.
type budget struct {
	mu                   sync.Mutex
	tokens, burst, ratio float64
}

func (b *budget) earn() {
	b.mu.Lock()
	b.tokens = min(b.burst, b.tokens+b.ratio)
	b.mu.Unlock()
}

// spend takes a token if there is one.
func (b *budget) spend() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
