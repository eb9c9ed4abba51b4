package envelope_test

import (
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/strictjson"
)

var benchSink any

// benchPayload is a request payload as SignRequest writes it for
// v1/derive-address, with a reply key.
const benchPayload = `{"method":"v1/derive-cred-kek","params":{"operator_omni":"0c2d9e6b3a8f4e1d7c5b2a9f8e6d4c3b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d","k3_epoch":1},` +
	`"nonce":"q83vEjRWeJCrze8SNFZ4kA","iat":1764331200,"aud":"dev-signer",` +
	`"reply_key":{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}`

// benchTypedData is an EIP-712 document of the size callers send.
const benchTypedData = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],` +
	`"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],` +
	`"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},` +
	`"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},` +
	`"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}`

type benchRequest struct {
	Method   string          `json:"method"`
	Params   json.RawMessage `json:"params"`
	Nonce    string          `json:"nonce"`
	IAT      int64           `json:"iat"`
	Aud      string          `json:"aud"`
	ReplyKey json.RawMessage `json:"reply_key,omitempty"`
}

type benchParams struct {
	OperatorOmni string  `json:"operator_omni"`
	Epoch        *uint32 `json:"k3_epoch"`
}

type benchField struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type benchTyped struct {
	Types       map[string][]benchField `json:"types"`
	PrimaryType string                  `json:"primaryType"`
	Domain      map[string]any          `json:"domain"`
	Message     json.RawMessage         `json:"message"`
}

func benchDecode[T any](b *testing.B, in string) {
	data := []byte(in)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var v T
		if err := strictjson.Decode(data, &v, 1<<20); err != nil {
			b.Fatal(err)
		}
		benchSink = v
	}
}

func BenchmarkDecodeJSONPayload(b *testing.B) { benchDecode[benchRequest](b, benchPayload) }

func BenchmarkDecodeJSONParams(b *testing.B) {
	benchDecode[benchParams](b, `{"operator_omni":"0c2d9e6b3a8f4e1d7c5b2a9f8e6d4c3b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d","k3_epoch":1}`)
}

func BenchmarkDecodeJSONTypedData(b *testing.B) { benchDecode[benchTyped](b, benchTypedData) }

// BenchmarkVerify is the whole request check of one ES256 request, with
// its chain cached as in steady state.
func BenchmarkVerify(b *testing.B) {
	p := newPKI(b)
	c := p.caller(b, "spiffe://td/broker", x509.ExtKeyUsageClientAuth)
	v := &envelope.Verifier{SignerID: "s1", CallerCA: p.pool, TrustDomain: "td", Window: time.Minute,
		Clock: func() time.Time { return now }, Instance: "instance-a", Replay: envelope.NewReplay(time.Minute, 1<<20, 1<<20, 1<<20, now)}
	params := map[string]any{"operator_omni": "0c2d9e6b3a8f4e1d7c5b2a9f8e6d4c3b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d", "k3_epoch": 1}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		body := sign(b, c, func(o *envelope.Outgoing) { o.Params = params })
		b.StartTimer()
		if _, err := v.Verify("v1/m", body, c.chain); err != nil {
			b.Fatal(err)
		}
	}
}
