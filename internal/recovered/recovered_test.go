package recovered

import (
	"errors"
	"strings"
	"testing"
)

//go:noinline
func crashWith(v any) { panic(v) }

func capture(v any) (value, stack string) {
	defer func() {
		r := recover()
		value, stack = Value(r), Stack()
	}()
	if v == nil {
		var xs []int
		_ = xs[len(xs)+0*len(value)] // a runtime error: index out of range
	}
	crashWith(v)
	return
}

func TestRecoveredPanicCarriesNoData(t *testing.T) {
	const secret = "0123456789abcdef-secret-bytes"
	tests := []struct {
		name      string
		v         any
		wantValue string
	}{
		{"runtime_error", nil, "index out of range"},
		{"string_value", "key " + secret, "panic(string)"},
		{"error_value", errors.New(secret), "panic(*errors.errorString)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value, stack := capture(tt.v)
			if !strings.Contains(value, tt.wantValue) {
				t.Errorf("value %q, want %q", value, tt.wantValue)
			}
			if strings.Contains(value+stack, secret) || strings.Contains(stack, "0x") {
				t.Errorf("the description carries data:\n%s\n%s", value, stack)
			}
			want := "recovered.crashWith"
			if tt.v == nil {
				want = "recovered.capture"
			}
			// The innermost frame outside the runtime is the one that panicked.
			top := ""
			for _, f := range strings.Split(stack, "\n") {
				if !strings.HasPrefix(f, "runtime.") {
					top = f
					break
				}
			}
			if !strings.Contains(top, want+" ") {
				t.Errorf("stack starts\n%s\nwant the panicking function %s at its top", stack, want)
			}
			if strings.Contains(stack, "recovered.Stack") || strings.Contains(stack, "capture.func1") {
				t.Errorf("stack holds the recovering frames:\n%s", stack)
			}
		})
	}
}
