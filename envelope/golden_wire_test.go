package envelope_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/envelope"
)

// The inputs the golden envelopes under docs/vectors were made from.
var (
	goldenRequestIAT  = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	goldenResponseIAT = goldenRequestIAT.Add(time.Second)
	// goldenReplyScalar is the caller's reply key (a0 a1 … bf).
	goldenReplyScalar = counting(0xa0)
)

// goldenKEKParams is v1/derive-cred-kek's params: the api type itself, so
// a change of its JSON shows in the golden bytes.
type goldenKEKParams = api.DeriveCredentialKEKRequest

// counting is the 32 bytes from, from+1, …
func counting(from byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

// readGolden reads a docs/vectors file of "name: value" lines; lines
// starting with "#" are annotations.
func readGolden(t *testing.T, name string) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../docs/vectors/" + name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if _, dup := out[k]; !ok || dup {
			t.Fatalf("%s line %d: not a \"name: value\" line of a new name", name, i+1)
		}
		out[k] = v
	}
	return out
}

func goldenHex(t *testing.T, g map[string]string, name string) []byte {
	t.Helper()
	b, err := hex.DecodeString(g[name])
	if err != nil || len(b) == 0 {
		t.Fatalf("%s: %q is not hex", name, g[name])
	}
	return b
}

// checkParts holds a golden file's header, payload and signature lines to
// the parts of its jws line.
func checkParts(t *testing.T, g map[string]string) []string {
	t.Helper()
	parts := strings.Split(g["jws"], ".")
	if len(parts) != 3 {
		t.Fatalf("jws has %d parts", len(parts))
	}
	b64 := base64.RawURLEncoding
	for i, want := range []string{b64.EncodeToString([]byte(g["header"])), b64.EncodeToString([]byte(g["payload"])),
		b64.EncodeToString(goldenHex(t, g, "signature"))} {
		if parts[i] != want {
			t.Fatalf("jws part %d is %s, the file's line encodes to %s", i+1, parts[i], want)
		}
	}
	return parts
}

// goldenChain is docs/vectors/caller-chain.pem: leaf, then its CA.
func goldenChain(t *testing.T) (leaf, ca *x509.Certificate) {
	t.Helper()
	b, err := os.ReadFile("../docs/vectors/caller-chain.pem")
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) != 2 {
		t.Fatalf("caller-chain.pem has %d certificates, want leaf and CA", len(certs))
	}
	return certs[0], certs[1]
}

func p256Key(t *testing.T, scalar []byte) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestGoldenRequestEnvelope signs docs/vectors/request-envelope.txt's
// request again (Ed25519 is deterministic) and compares every byte, then
// has the enclave's verifier accept it.
func TestGoldenRequestEnvelope(t *testing.T) {
	g := readGolden(t, "request-envelope.txt")
	resp := readGolden(t, "response-envelope.txt")
	leaf, ca := goldenChain(t)
	if sum := sha256.Sum256(leaf.Raw); hex.EncodeToString(sum[:]) != g["leaf_sha256"] {
		t.Fatalf("leaf_sha256 %s, caller-chain.pem's leaf has %x", g["leaf_sha256"], sum)
	}
	key := ed25519.NewKeyFromSeed(goldenHex(t, g, "caller_seed"))
	if !key.Public().(ed25519.PublicKey).Equal(leaf.PublicKey) {
		t.Fatal("caller_seed is not the leaf certificate's key")
	}
	signer, err := envelope.NewResponseSigner(p256Key(t, goldenHex(t, resp, "response_key_scalar")))
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 16)
	for i := range nonce {
		nonce[i] = byte(i)
	}
	got, err := envelope.SignRequest(envelope.Credentials{Signer: key, Leaf: leaf.Raw}, envelope.Outgoing{
		Method:   "v1/derive-cred-kek",
		Params:   goldenKEKParams{OperatorOmni: strings.Repeat("11", 32), Epoch: 1},
		Audience: "dev-signer", Enclave: signer.KeyID(), IAT: goldenRequestIAT, Nonce: nonce,
		ReplyKey: &jose.JSONWebKey{Key: &p256Key(t, goldenReplyScalar).PublicKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != g["jws"] {
		t.Fatalf("SignRequest gives\n%s\nrequest-envelope.txt has\n%s", got, g["jws"])
	}
	parts := checkParts(t, g)
	if !ed25519.Verify(key.Public().(ed25519.PublicKey), []byte(parts[0]+"."+parts[1]), goldenHex(t, g, "signature")) {
		t.Fatal("signature does not verify over b64(header).b64(payload)")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	v := &envelope.Verifier{
		SignerID: "dev-signer", CallerCA: pool, TrustDomain: "nitro-signer.dev", Window: envelope.DefaultWindow,
		Clock: func() time.Time { return goldenRequestIAT }, Instance: signer.KeyID(), Roles: map[string]bool{"broker": true},
		Replay: envelope.NewReplay(envelope.DefaultWindow, 1024, 0, 0, goldenRequestIAT),
	}
	req, err := v.Verify("v1/derive-cred-kek", []byte(g["jws"]), [][]byte{leaf.Raw})
	if err != nil {
		t.Fatalf("the enclave's verifier refuses the golden request: %v", err)
	}
	if req.Caller.ID != "spiffe://nitro-signer.dev/broker" || req.ReplyKey == nil ||
		string(req.Params) != `{"operator_omni":"`+strings.Repeat("11", 32)+`","k3_epoch":1}` {
		t.Fatalf("verified as %+v, params %s", req.Caller, req.Params)
	}
}

// TestGoldenResponseEnvelope checks docs/vectors/response-envelope.txt: its
// signature verifies and it answers the golden request (ES256 is
// randomized, so its signature is checked rather than made again), the
// response signer writes exactly its header and payload for its result, and
// its KEK decrypts to docs/derivations.md's kek_epoch1.
func TestGoldenResponseEnvelope(t *testing.T) {
	g := readGolden(t, "response-envelope.txt")
	request := []byte(readGolden(t, "request-envelope.txt")["jws"])
	key := p256Key(t, goldenHex(t, g, "response_key_scalar"))
	signer, err := envelope.NewResponseSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	if signer.KeyID() != g["kid"] {
		t.Fatalf("kid %s, the response key's is %s", g["kid"], signer.KeyID())
	}
	parts := checkParts(t, g)
	sig := goldenHex(t, g, "signature")
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(&key.PublicKey, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("signature is not r ‖ s over SHA-256 of b64(header).b64(payload) by the response key")
	}
	resp, err := envelope.VerifyResponse([]byte(g["jws"]), request, func(kid string) *ecdsa.PublicKey {
		if kid == signer.KeyID() {
			return &key.PublicKey
		}
		return nil
	})
	if err != nil {
		t.Fatalf("VerifyResponse: %v", err)
	}
	if !resp.IAT.Equal(goldenResponseIAT) || resp.Err != nil {
		t.Fatalf("iat %s, error %v", resp.IAT, resp.Err)
	}
	again, err := signer.Sign(request, goldenResponseIAT, resp.Result, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Split(string(again), "."); p[0] != parts[0] || p[1] != parts[1] {
		t.Fatalf("ResponseSigner writes\n%s.%s\nresponse-envelope.txt has\n%s.%s", p[0], p[1], parts[0], parts[1])
	}
	var result struct {
		KEK   string `json:"kek_jwe"`
		Epoch uint32 `json:"k3_epoch"`
	}
	if err := json.Unmarshal(resp.Result, &result); err != nil || result.Epoch != 1 {
		t.Fatalf("result %s: %v", resp.Result, err)
	}
	jwe, err := jose.ParseEncryptedCompact(result.KEK, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	kek, err := jwe.Decrypt(p256Key(t, goldenReplyScalar))
	if err != nil {
		t.Fatal(err)
	}
	if want := derivationKEK(t, "kek_epoch1"); !bytes.Equal(kek, want) {
		t.Fatalf("kek_jwe decrypts to %x, docs/derivations.md's kek_epoch1 is %x", kek, want)
	}
}

// derivationKEK is the kek of a vector of docs/derivations.md's JSON block.
func derivationKEK(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../docs/derivations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "```json\n")
	block, _, _ := strings.Cut(rest, "```")
	var doc struct {
		Vectors []struct {
			Name string `json:"name"`
			KEK  string `json:"kek"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal([]byte(block), &doc); err != nil {
		t.Fatalf("docs/derivations.md: %v", err)
	}
	for _, v := range doc.Vectors {
		if v.Name == name {
			kek, err := hex.DecodeString(v.KEK)
			if err != nil || len(kek) != 32 {
				t.Fatalf("%s: kek %q", name, v.KEK)
			}
			return kek
		}
	}
	t.Fatalf("docs/derivations.md has no vector %s", name)
	return nil
}
