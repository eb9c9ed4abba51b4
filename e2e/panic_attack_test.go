package e2e

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
)

// unencodable is typed data that go-ethereum's apitypes cannot encode: a JSON
// null inside an array reaches encodeArrayValue as a nil interface, which
// panicked there and took the whole enclave down.
var unencodable = []struct {
	name      string
	typedData string
}{
	{"bad_null_in_uint_array", `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"Msg":[{"name":"xs","type":"uint256[]"}]},` +
		`"primaryType":"Msg","domain":{"name":"x"},"message":{"xs":[null]}}`},
	{"bad_null_in_struct_array", `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"Msg":[{"name":"xs","type":"Item[]"}],"Item":[{"name":"v","type":"uint8"}]},` +
		`"primaryType":"Msg","domain":{"name":"x"},"message":{"xs":[{"v":1},null]}}`},
}

// TestOneRequestCannotCrashTheEnclave sends, as an ordinary broker through
// the parent, typed data go-ethereum cannot encode, on both surfaces. Each
// call must be refused with a signed invalid_typed_data, and the enclave must
// stay up: the same process answers the next call, and its replay cache is
// still the one that saw the first requests.
func TestOneRequestCannotCrashTheEnclave(t *testing.T) {
	e := newEnv(t)
	c := e.client("broker")
	if _, err := c.DeriveAddress(ctx(t), omniHex, 1); err != nil {
		t.Fatal(err)
	}
	pid := e.enclave.cmd.Process.Pid
	for _, tt := range unencodable {
		for _, method := range []string{"v1/sign/typed-data", "dev/sign-typed-data"} {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				params := map[string]any{"actor_omni": omniHex, "typed_data": json.RawMessage(tt.typedData)}
				if strings.HasPrefix(method, "dev/") {
					params = map[string]any{"omni_account": omniHex, "typed_data": json.RawMessage(tt.typedData)}
				}
				err := c.Call(ctx(t), method, params, nil)
				var refusal *api.Error
				if !errors.As(err, &refusal) || refusal.Code != api.CodeInvalidTypedData {
					t.Errorf("Call: %v, want a signed refusal %s", err, api.CodeInvalidTypedData)
				}
				select {
				case <-e.enclave.done:
					t.Fatalf("the enclave exited (%v) after one request:\n%s", e.enclave.exited, tail(e.enclave, 20))
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.DeriveAddress(ctx(t), omniHex, 1); err != nil {
					t.Fatalf("the next call: %v", err)
				}
			})
		}
	}
	if got := e.enclave.cmd.Process.Pid; got != pid {
		t.Fatalf("enclave pid %d, was %d", got, pid)
	}
	// Nothing panicked, and the parent says so: it exports the count the
	// enclave reports in its readiness reply.
	resp, err := e.httpClient("broker").Get(e.parent + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, err := metric(e.metricsURL(), "signer_enclave_panics_total"); err != nil || got != 0 {
		t.Fatalf("signer_enclave_panics_total %v (%v), want 0", got, err)
	}
}

// tail is the last n log lines of p.
func tail(p *proc, n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines[max(0, len(p.lines)-n):], "\n")
}
