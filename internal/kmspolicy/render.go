package kmspolicy

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/internal/text"
)

// ErrOptions marks options or releases Render refuses.
var ErrOptions = errors.New("kmspolicy: cannot render the key policy")

// Options say whom the key policy names.
type Options struct {
	// Role is the ARN of the IAM role the parent instances run as (whose
	// credentials the enclave signs its KMS requests with):
	// arn:aws:iam::111122223333:role/signer.
	Role string
	// SignerID is the deployment's signer_id; data keys are bound to it by
	// the encryption context.
	SignerID string
	// Account is the 12-digit account whose administrators manage the
	// key; empty means the role's.
	Account string
}

// The condition keys and operators of rendered statements.
const (
	// PCRKeyPrefix + "0" is the condition key of PCR0.
	PCRKeyPrefix = "kms:RecipientAttestation:PCR"
	// ImageSHA384Key is AWS's other name for PCR0.
	ImageSHA384Key = "kms:RecipientAttestation:ImageSha384"
	// ContextKey is the condition key of the signer_id in the encryption
	// context.
	ContextKey  = "kms:EncryptionContext:" + api.KMSContextKey
	CurrentTime = "aws:CurrentTime"

	opPCR       = "StringEqualsIgnoreCase"
	opContext   = "StringEquals"
	opNotBefore = "DateGreaterThanEquals"
	opNotAfter  = "DateLessThan"

	// AdminSid names the administrators' statement.
	AdminSid = "KeyAdministration"
)

// EnclaveActions are what a release's statement allows: the two calls of
// the KMS sealer, each with a Recipient.
var EnclaveActions = []string{"kms:Decrypt", "kms:GenerateDataKey"}

// AdminActions are what the account's administrators may do with the key
// (see the package documentation for what is left out, and why).
var AdminActions = []string{
	"kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey",
	"kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
	"kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListGrants", "kms:ListKeyPolicies",
	"kms:ListKeyRotations", "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:RevokeGrant",
	"kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource",
	"kms:UpdateAlias", "kms:UpdateKeyDescription",
}

var (
	roleARN = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::([0-9]{12}):role/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}$`)
	account = regexp.MustCompile(`^[0-9]{12}$`)
	// signerID is enclave/config's rule for signer_id.
	signerID = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)
)

// Render returns the key policy for the releases: the administrators'
// statement, then one statement per release in the manifest's order.
func Render(rs *attestation.Releases, o Options) (*Document, error) {
	m := roleARN.FindStringSubmatch(o.Role)
	if m == nil || len(o.Role) > 2048 {
		return nil, fmt.Errorf("%w: role %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", ErrOptions, text.Truncate(o.Role))
	}
	partition, acct := m[1], m[2]
	if o.Account != "" {
		if !account.MatchString(o.Account) {
			return nil, fmt.Errorf("%w: account %q is not a 12-digit account id", ErrOptions, text.Truncate(o.Account))
		}
		acct = o.Account
	}
	if !signerID.MatchString(o.SignerID) {
		return nil, fmt.Errorf("%w: signer id %q: want [a-z0-9.-], 1..63 characters, as the enclave's configuration", ErrOptions, text.Truncate(o.SignerID))
	}
	if rs == nil || len(rs.Releases) == 0 {
		return nil, fmt.Errorf("%w: no release: the policy would let no enclave unseal", ErrOptions)
	}
	d := &Document{Version: PolicyVersion}
	d.Statements = append(d.Statements, Statement{
		Sid: AdminSid, Effect: "Allow", admin: true,
		Principal: &Principal{AWS: []string{"arn:" + partition + ":iam::" + acct + ":root"}},
		Action:    slices.Clone(AdminActions), Resource: []string{"*"},
	})
	sids := map[string]string{}
	for i := range rs.Releases {
		r := &rs.Releases[i]
		s, err := releaseStatement(r, o)
		if err != nil {
			return nil, err
		}
		if other, dup := sids[s.Sid]; dup {
			return nil, fmt.Errorf("%w: releases %q and %q would both be statement %q: a statement id holds only letters, digits and spaces", ErrOptions, text.Truncate(other), text.Truncate(r.Version), s.Sid)
		}
		sids[s.Sid] = r.Version
		d.Statements = append(d.Statements, *s)
	}
	if _, err := d.Marshal(); err != nil {
		return nil, fmt.Errorf("%w: %s (retire releases from the manifest)", ErrOptions, strings.TrimPrefix(err.Error(), "kmspolicy: "))
	}
	return d, nil
}

func releaseStatement(r *attestation.Release, o Options) (*Statement, error) {
	if err := r.Validate(); err != nil {
		// Zero PCRs (every debug enclave, every unsigned image), a
		// match naming no PCR it gives, a window the wrong way round.
		return nil, fmt.Errorf("%w: %v", ErrOptions, err)
	}
	if len(r.Match) == 0 {
		return nil, fmt.Errorf("%w: release %q pins no PCR", ErrOptions, text.Truncate(r.Version))
	}
	s := &Statement{
		Sid: SidOf(r.Version), Effect: "Allow", release: r.Version,
		Principal: &Principal{AWS: []string{o.Role}},
		Action:    slices.Clone(EnclaveActions), Resource: []string{"*"},
	}
	for _, i := range r.Match {
		v, ok := r.PCRs[i]
		if !ok || len(v) != 48 {
			return nil, fmt.Errorf("%w: release %q matches PCR%d, which it does not give", ErrOptions, text.Truncate(r.Version), i)
		}
		s.Conditions = append(s.Conditions, Condition{Operator: opPCR, Key: fmt.Sprintf("%s%d", PCRKeyPrefix, i), Values: []string{hex.EncodeToString(v)}})
	}
	s.Conditions = append(s.Conditions, Condition{Operator: opContext, Key: ContextKey, Values: []string{o.SignerID}})
	if !r.NotBefore.IsZero() {
		s.Conditions = append(s.Conditions, Condition{Operator: opNotBefore, Key: CurrentTime, Values: []string{r.NotBefore.UTC().Format(time.RFC3339)}})
	}
	if !r.NotAfter.IsZero() {
		s.Conditions = append(s.Conditions, Condition{Operator: opNotAfter, Key: CurrentTime, Values: []string{r.NotAfter.UTC().Format(time.RFC3339)}})
	}
	s.Conditions = sortedConditions(s.Conditions)
	return s, nil
}

// SidOf is the statement id of a release's statement: "Release " and the
// version, each run of characters a statement id cannot hold (anything
// but ASCII letters, digits and spaces) one space: v1.2.3 is
// "Release v1 2 3".
func SidOf(version string) string {
	var b strings.Builder
	space := false
	for _, r := range version {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(r)
			space = false
		} else {
			space = true
		}
	}
	return strings.TrimSpace("Release " + b.String())
}
