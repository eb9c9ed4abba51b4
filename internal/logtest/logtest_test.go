package logtest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/logtest"
)

type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// leaky redacts itself from fmt only, as hostproto.Credentials did.
type leaky struct{ Secret string }

func (leaky) Format(f fmt.State, _ rune) { fmt.Fprint(f, "leaky{redacted}") }

type bytesLeaky struct{ Key []byte }

// The check bites: a type that only fmt redacts is caught by the JSON
// handler, one that redacts nowhere by every way, and a []byte secret in
// its hex and base64 forms.
func TestNeverLoggedCatchesLeaks(t *testing.T) {
	tests := []struct {
		name    string
		v       any
		secret  []byte
		atLeast int
		want    string
	}{
		{"fmt_only_redaction", leaky{"s3cr3t-access-key"}, []byte("s3cr3t-access-key"), 1, "json/direct"},
		{"no_redaction", struct{ Secret string }{"s3cr3t-access-key"}, []byte("s3cr3t-access-key"), 20, "text/fmt_%v"},
		{"bytes", bytesLeaky{[]byte("0123456789abcdef")}, []byte("0123456789abcdef"), 20, "json/direct"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			logtest.NeverLogged(r, tt.v, tt.secret)
			if len(r.failures) < tt.atLeast || !strings.Contains(strings.Join(r.failures, "\n"), tt.want) {
				t.Fatalf("%d failures:\n%s", len(r.failures), strings.Join(r.failures, "\n"))
			}
		})
	}
}
