package api_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
)

func TestCodesHaveStatuses(t *testing.T) {
	for _, c := range api.Codes() {
		if s := c.Status(); s < 400 || s > 599 {
			t.Errorf("%s → %d", c, s)
		}
	}
	if api.Code("nope").Status() != 500 {
		t.Error("an unknown code is not 500")
	}
}

// protocolDoc is docs/protocol.md, the reference beside `go doc ./api`.
func protocolDoc(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestErrorTableIsTheCodeList: docs/protocol.md's error table lists every
// code with its status, and no code the API does not have.
func TestErrorTableIsTheCodeList(t *testing.T) {
	rows := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([0-9]{3}) \\|").FindAllSubmatch(protocolDoc(t), -1)
	doc := map[api.Code]int{}
	for _, r := range rows {
		status, _ := strconv.Atoi(string(r[2]))
		doc[api.Code(r[1])] = status
	}
	for _, c := range api.Codes() {
		if s, ok := doc[c]; !ok || s != c.Status() {
			t.Errorf("code %s (%d): the doc says %d (0: absent)", c, c.Status(), s)
		}
		delete(doc, c)
	}
	for c := range doc {
		t.Errorf("the doc lists %s, which is not a code", c)
	}
}

// TestMethodTableIsTheRouteList: docs/protocol.md's method table lists
// every route, and no route the API does not have.
func TestMethodTableIsTheRouteList(t *testing.T) {
	rows := regexp.MustCompile("(?m)^\\| `((?:v1|dev)/[a-z0-9/-]+)` \\|").FindAllSubmatch(protocolDoc(t), -1)
	doc := map[string]bool{}
	for _, r := range rows {
		doc[string(r[1])] = true
	}
	for _, m := range api.Methods() {
		if !doc[m.Route] {
			t.Errorf("the doc's method table has no %s", m.Route)
		}
		delete(doc, m.Route)
	}
	for r := range doc {
		t.Errorf("the doc lists %s, which is not a method", r)
	}
}

// TestMethods: routes are unique, Lookup finds each, and exactly the
// methods that change the keyring say so.
func TestMethods(t *testing.T) {
	changes := map[string]bool{"v1/keys/rotate": true, "v1/keys/import": true, "v1/keys/peer-import": true}
	seen := map[string]bool{}
	for _, m := range api.Methods() {
		if seen[m.Route] {
			t.Errorf("%s twice", m.Route)
		}
		seen[m.Route] = true
		if got, ok := api.Lookup(m.Route); !ok || got != m {
			t.Errorf("Lookup(%s) = %+v, %v", m.Route, got, ok)
		}
		if m.ChangesState != changes[m.Route] {
			t.Errorf("%s: ChangesState %v", m.Route, m.ChangesState)
		}
		if m.ReplyKey != (m.Route == "v1/derive-cred-kek" || m.Route == "v1/oidc-token" || m.Route == "v1/sts-credentials") {
			t.Errorf("%s: ReplyKey %v", m.Route, m.ReplyKey)
		}
	}
	if len(seen) != 22 {
		t.Errorf("%d methods, want 22", len(seen))
	}
	if _, ok := api.Lookup("v1/nope"); ok {
		t.Error("Lookup found a route that is not one")
	}
}

// TestErrorBodyOnTheWire: the one error body, byte for byte as the parent
// and the enclave's channel have always written it.
func TestErrorBodyOnTheWire(t *testing.T) {
	b, err := json.Marshal(api.Errorf(api.CodeOverloaded, "parent at its concurrency limit").Body())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"error":"overloaded","message":"parent at its concurrency limit"}`; string(b) != want {
		t.Fatalf("%s, want %s", b, want)
	}
}

// TestSealImportOpensOnlyForTheSigner: what SealImport writes opens with
// the enclave's key under the same signer's info, and under no other.
func TestSealImportOpensOnlyForTheSigner(t *testing.T) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte{7}, api.SecretSize)
	ct, err := api.SealImport(priv.PublicKey().Bytes(), "signer-a", secret)
	if err != nil {
		t.Fatal(err)
	}
	k, err := hpke.NewDHKEMPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := hpke.Open(k, hpke.HKDFSHA256(), hpke.AES256GCM(), api.ImportInfo("signer-a"), ct)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %v", err)
	}
	if _, err := hpke.Open(k, hpke.HKDFSHA256(), hpke.AES256GCM(), api.ImportInfo("signer-b"), ct); err == nil {
		t.Fatal("an import for signer-a opened as signer-b's")
	}
	for name, tc := range map[string]struct {
		key    []byte
		secret []byte
	}{
		"bad_secret_short": {priv.PublicKey().Bytes(), secret[:31]},
		"bad_secret_long":  {priv.PublicKey().Bytes(), append(secret, 0)},
		"bad_key":          {[]byte{1, 2, 3}, secret},
	} {
		if _, err := api.SealImport(tc.key, "signer-a", tc.secret); err == nil {
			t.Errorf("%s: sealed", name)
		}
	}
}

func TestSTSErrorCode(t *testing.T) {
	for _, c := range []struct {
		e    *api.Error
		want string
	}{
		{api.Errorf(api.CodeSTSRefused, "AccessDenied: STS refused the exchange (HTTP 403)"), "AccessDenied"},
		{api.Errorf(api.CodeSTSUnavailable, "Timeout: STS did not answer in time"), "Timeout"},
		{api.Errorf(api.CodeSTSRefused, "no colon here"), ""},
		{api.Errorf(api.CodeSTSRefused, "two words: x"), ""},
		{api.Errorf(api.CodeSTSRefused, ": empty"), ""},
		{&api.Error{Code: api.CodeSTSRefused, Message: strings.Repeat("A", 65) + ": long"}, ""},
		{api.Errorf(api.CodeBadRequest, "AccessDenied: not an STS refusal"), ""},
		{nil, ""},
	} {
		if got := api.STSErrorCode(c.e); got != c.want {
			t.Errorf("STSErrorCode(%v) = %q, want %q", c.e, got, c.want)
		}
	}
}
