package kmsseal_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/enclave/seal/kmsseal"
)

// A parent that serves the enclave credentials of an account it controls,
// where it created the alias the enclave names, would get every keyring
// sealed under its own key: AWS resolves an alias name or a bare key id in
// the account of the signing credentials. Only a full key ARN pins the
// operator's key; with it the parent's credentials get no data key at all.
func TestParentCredentialsInAnotherAccountGetNoEpoch(t *testing.T) {
	tests := []struct {
		name  string
		keyID string
	}{
		{"bad_alias_name", alias},
		{"bad_alias_arn", "arn:aws:kms:us-east-1:111122223333:" + alias},
		{"bad_bare_key_id", "1234abcd-12ab-34cd-56ef-1234567890ab"},
		{"key_arn", keyARN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			sim := simulator(t, f.dir, "image-a", false)
			s, err := f.sealerFor(sim, f.kms.URL, tt.keyID, parentAccount)
			if err != nil {
				if tt.keyID == keyARN || !errors.Is(err, kmsseal.ErrKeyID) || s != nil {
					t.Fatalf("kmsseal.New(%q): %v, %v", tt.keyID, s, err)
				}
				return
			}
			blob, err := seal.Seal(context.Background(), s, "signer-a", secrets(), time.Now())
			if err == nil {
				// The attack worked: the parent opens it with its own key.
				k, _, oerr := seal.Open(context.Background(), f.kms.Owner(parentAccount), "signer-a", blob)
				if oerr == nil {
					t.Fatalf("the parent read %d epochs sealed under its own key %s", len(k.Epochs), parentKeyARN)
				}
				t.Fatalf("sealed with the parent's credentials (the parent could not open it: %v)", oerr)
			}
			if n := f.kms.Used(parentKeyARN); n != 0 {
				t.Fatalf("the parent's key served %d calls", n)
			}
			if f.kms.Calls("GenerateDataKey") != 0 {
				t.Fatal("KMS handed out a data key")
			}
			if tt.keyID != keyARN {
				t.Fatalf("kmsseal.New took key id %q", tt.keyID)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// Even with a key ARN configured, an answer that names another key than
// the ARN is refused, and nothing of it is used: a new data key is not
// sealed with, a decrypted one is not opened with, and the sealed keyring
// is not blamed (KMS, not the file, is wrong).
func TestKMSAnswerForAnotherKeyIsRefused(t *testing.T) {
	answers := []struct {
		name  string
		keyID string
	}{
		{"bad_parent_key", parentKeyARN},
		{"bad_alias_arn", "arn:aws:kms:us-east-1:111122223333:" + alias},
		{"bad_other_region", "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
		{"bad_bare_key_id", "1234abcd-12ab-34cd-56ef-1234567890ab"},
		{"bad_case", "arn:aws:kms:us-east-1:111122223333:key/1234ABCD-12ab-34cd-56ef-1234567890ab"},
		{"bad_empty", ""},
	}
	for _, tt := range answers {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.sealer(t, simulator(t, f.dir, "image-a", false), f.kms.URL)
			good, err := seal.Seal(context.Background(), s, "signer-a", secrets(), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			f.kms.AnswerKeyID.Store(&tt.keyID)
			if _, err := seal.Seal(context.Background(), s, "signer-a", secrets(), time.Now()); !errors.Is(err, kmsseal.ErrWrongKey) {
				t.Fatalf("GenerateDataKey answered for %q: %v", tt.keyID, err)
			}
			_, _, err = seal.Open(context.Background(), s, "signer-a", good)
			if !errors.Is(err, kmsseal.ErrWrongKey) || !errors.Is(err, seal.ErrUnwrap) || errors.Is(err, seal.ErrAuthentication) {
				t.Fatalf("Decrypt answered for %q: %v", tt.keyID, err)
			}
			// The same KMS answering for the right key again: all is well.
			f.kms.AnswerKeyID.Store(nil)
			if _, _, err := seal.Open(context.Background(), s, "signer-a", good); err != nil {
				t.Fatal(err)
			}
		})
	}
}
