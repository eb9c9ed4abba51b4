package client_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

const (
	fakeRole    = "arn:aws:iam::123456789012:role/actor-storage"
	fakeKeyID   = "ASIAFAKEACCESSKEY001"
	fakeSecret  = "fake-secret-access-key-0123456789abcdefgh"
	fakeSession = "fake-session-token-0123456789abcdefghijklmnopqrstuvwxyz"
)

// fakeSTSAnswer is v1/sts-credentials' answer on its way out of the fake:
// the plaintext, the key it is encrypted to, and the answer around it.
type fakeSTSAnswer struct {
	plaintext []byte
	encryptTo crypto.PublicKey
	answer    api.STSCredentialsResponse
	err       error
}

// handleSTS answers as the enclave does in shape. f.mu is held.
func (f *fakeSigner) handleSTS(v *envelope.Verified) (any, error) {
	var p api.STSCredentialsRequest
	if err := json.Unmarshal(v.Params, &p); err != nil || v.ReplyKey == nil {
		return nil, api.Errorf(api.CodeBadRequest, "params")
	}
	exp := time.Now().Add(time.Duration(p.TTL) * time.Second).UTC().Truncate(time.Second)
	plain, _ := json.Marshal(api.AWSCredentials{Version: 1, AccessKeyID: fakeKeyID, SecretAccessKey: fakeSecret,
		SessionToken: fakeSession, Expiration: exp})
	a := &fakeSTSAnswer{plaintext: plain, encryptTo: v.ReplyKey.Key, answer: api.STSCredentialsResponse{
		RoleARN: p.RoleARN, AssumedRoleARN: "arn:aws:sts::123456789012:assumed-role/actor-storage/" + p.ActorOmni,
		Expires: exp.Unix(), KeyID: "kid-1", Epoch: 1,
	}}
	if f.stsTamper != nil {
		f.stsTamper(a)
	}
	if a.err != nil {
		return nil, a.err
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.ECDH_ES, Key: a.encryptTo}, nil)
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "encrypter")
	}
	obj, err := enc.Encrypt(a.plaintext)
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "encrypt")
	}
	if a.answer.Credentials, err = obj.CompactSerialize(); err != nil {
		return nil, api.Errorf(api.CodeInternal, "serialize")
	}
	return a.answer, nil
}

func stsCredentials(c *client.Client) (*client.AWSCredentials, error) {
	return c.STSCredentials(context.Background(), fakeOmni, fakeRole, 15*time.Minute)
}

func TestSTSCredentialsAreDecryptedAndKeptOutOfLogs(t *testing.T) {
	f := newFakeSigner(t)
	c := f.newClient(t)
	creds, err := stsCredentials(c)
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != fakeKeyID || creds.SecretAccessKey != fakeSecret || creds.SessionToken != fakeSession ||
		creds.RoleARN != fakeRole || creds.KeyID != "kid-1" || creds.Epoch != 1 ||
		time.Until(creds.Expiration) < 14*time.Minute || !strings.HasSuffix(creds.AssumedRoleARN, "/"+fakeOmni) {
		t.Fatalf("credentials %+v", *creds)
	}
	logtest.NeverLogged(t, *creds, []byte(fakeSecret), []byte(fakeSession))
	logtest.NeverLogged(t, creds, []byte(fakeSecret), []byte(fakeSession))
	if !strings.Contains(creds.String(), fakeKeyID) || !strings.Contains(creds.String(), fakeRole) {
		t.Fatalf("String names neither the key id nor the role: %s", creds)
	}
}

func TestSTSCredentialsBadAnswersAreRefused(t *testing.T) {
	for name, tamper := range map[string]func(a *fakeSTSAnswer){
		"bad_another_role": func(a *fakeSTSAnswer) { a.answer.RoleARN = fakeRole + "-admin" },
		"bad_not_json":     func(a *fakeSTSAnswer) { a.plaintext = []byte("SECRET-MARKER not json") },
		"bad_unknown_member": func(a *fakeSTSAnswer) {
			a.plaintext = []byte(`{"Version":1,"AccessKeyId":"A","SecretAccessKey":"SECRET-MARKER","SessionToken":"t","Expiration":"2030-01-01T00:00:00Z","Extra":1}`)
		},
		"bad_no_secret": func(a *fakeSTSAnswer) {
			var c api.AWSCredentials
			json.Unmarshal(a.plaintext, &c)
			c.SecretAccessKey = ""
			a.plaintext, _ = json.Marshal(c)
		},
		"bad_version": func(a *fakeSTSAnswer) {
			var c api.AWSCredentials
			json.Unmarshal(a.plaintext, &c)
			c.Version = 2
			a.plaintext, _ = json.Marshal(c)
		},
		"bad_expiration_not_the_answers": func(a *fakeSTSAnswer) { a.answer.Expires += 3600 },
		"bad_encrypted_to_another_key": func(a *fakeSTSAnswer) {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Error(err)
				return
			}
			a.encryptTo = &k.PublicKey
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeSigner(t)
			f.stsTamper = tamper
			_, err := stsCredentials(f.newClient(t))
			if !errors.Is(err, client.ErrResponse) {
				t.Fatalf("%v, want ErrResponse", err)
			}
			for _, s := range []string{"SECRET-MARKER", fakeSecret, fakeSession} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error quotes a secret: %v", err)
				}
			}
		})
	}
}

func TestSTSCredentialsRefusals(t *testing.T) {
	f := newFakeSigner(t)
	c := f.newClient(t)
	for _, ttl := range []time.Duration{0, -time.Second, 1500 * time.Millisecond} {
		if _, err := c.STSCredentials(context.Background(), fakeOmni, fakeRole, ttl); err == nil {
			t.Errorf("ttl %v accepted", ttl)
		}
	}
	if n := f.calls[api.STSCredentials.Route]; n != 0 {
		t.Fatalf("%d calls for ttls refused before calling", n)
	}
	f.stsTamper = func(a *fakeSTSAnswer) {
		a.err = api.Errorf(api.CodeSTSRefused, "InvalidIdentityToken: STS refused the exchange (HTTP 400)")
	}
	_, err := stsCredentials(c)
	var e *api.Error
	if !errors.As(err, &e) || e.Code != api.CodeSTSRefused || api.STSErrorCode(e) != "InvalidIdentityToken" {
		t.Fatalf("%v, want sts_refused naming InvalidIdentityToken", err)
	}
}
