package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/service"
	"github.com/nitro-signer/nitro-signer/envelope"
)

// floorMeter measures, with the enclave's own code, the cryptography one
// sign-message request cannot avoid: verifying the caller's ES256 request
// signature, deriving the wallet key, the secp256k1 signature, and signing
// the response. It accumulates thread CPU time and operations per part, so
// it can be sampled once on an idle machine and again, one part at a time
// in slices of a millisecond, while the load runs: under load the same
// cryptography costs more CPU (the cores' caches and memory bandwidth are
// shared), and a floor measured idle would count that contention as the
// server's overhead.
type floorMeter struct {
	parts map[string]func() error
	cpu   map[string]time.Duration
	ops   map[string]int
}

func newFloorMeter() (*floorMeter, error) {
	callerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	req, err := envelope.SignRequest(envelope.Credentials{Signer: callerKey, Leaf: []byte("leaf")},
		envelope.Outgoing{Method: "dev/sign-message", Params: benchParams["dev/sign-message"], Audience: "bench", Enclave: strings.Repeat("k", 43), IAT: time.Now(), Nonce: make([]byte, 16)})
	if err != nil {
		return nil, err
	}
	keys := keyring.New()
	secret, _ := keyring.NewSecret(bytes.Repeat([]byte{0x42}, 32))
	keys.Add(secret)
	omni, _ := keyring.ParseOmni(benchOmni)
	respKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := envelope.NewResponseSigner(respKey)
	if err != nil {
		return nil, err
	}
	msg := []byte("hello from signer-bench")
	result := api.DevSignMessageResponse{Signature: "0x" + strings.Repeat("ab", 65), Address: "0x" + strings.Repeat("cd", 20), KeyVersion: 1}
	m := &floorMeter{cpu: map[string]time.Duration{}, ops: map[string]int{}}
	m.parts = map[string]func() error{
		"verify_request_signature": func() error {
			jws, err := jose.ParseSignedCompact(string(req), []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				return err
			}
			_, err = jws.Verify(&callerKey.PublicKey)
			return err
		},
		"derive_wallet_key": func() error {
			_, err := keys.Derive(keyring.Wallet, 1, omni)
			return err
		},
		"secp256k1_sign": func() error {
			k, err := keys.Derive(keyring.Wallet, 1, omni)
			if err != nil {
				return err
			}
			_, err = k.Sign(service.PersonalHash(msg))
			return err
		},
		"sign_response": func() error {
			_, err := signer.Sign(req, time.Now(), result, nil)
			return err
		},
	}
	return m, nil
}

// sample runs every part for about d of wall time each (samplePart).
func (m *floorMeter) sample(d time.Duration) error {
	for _, name := range m.names() {
		if err := m.samplePart(name, d); err != nil {
			return err
		}
	}
	return nil
}

// names are the parts in a fixed order.
func (m *floorMeter) names() []string { return slices.Sorted(mapKeys(m.parts)) }

// samplePart runs one part on one locked thread for about d of wall time
// and adds the thread's CPU time and the operations to the totals. CPU
// time, not wall time: time spent preempted would inflate the floor and
// flatter the ratio (the server side is CPU time too, from /proc). One
// operation runs untimed first, so that a slice of a millisecond measures
// what a slice of a second does: the part with its code and tables in
// cache, not the cache misses of its first operation after other work.
func (m *floorMeter) samplePart(name string, d time.Duration) error {
	f := m.parts[name]
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := f(); err != nil {
		return err
	}
	cpu0, err := threadCPU()
	if err != nil {
		return err
	}
	n, start := 0, time.Now()
	for n == 0 || time.Since(start) < d {
		if err := f(); err != nil {
			return err
		}
		n++
	}
	cpu1, err := threadCPU()
	if err != nil {
		return err
	}
	m.cpu[name] += cpu1 - cpu0
	m.ops[name] += n
	return nil
}

// floor is the microseconds per request, in total and per part, of what
// has been sampled; ok is false before any sample.
func (m *floorMeter) floor() (total float64, parts map[string]float64, ok bool) {
	parts = map[string]float64{}
	for name := range m.parts {
		if m.ops[name] == 0 {
			return 0, nil, false
		}
		parts[name] = float64(m.cpu[name].Nanoseconds()) / 1e3 / float64(m.ops[name])
	}
	// secp256k1_sign includes a derivation; count it once.
	parts["secp256k1_sign"] -= parts["derive_wallet_key"]
	for _, us := range parts {
		total += us
	}
	return total, parts, true
}
