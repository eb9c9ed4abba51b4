package bounded_test

import (
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/bounded"
)

func TestMapStaysBounded(t *testing.T) {
	m := bounded.New[int, int](100)
	for i := range 10_000 {
		m.Put(i, i*2)
		if m.Len() > 100 {
			t.Fatalf("%d entries after %d puts, limit 100", m.Len(), i+1)
		}
		if v, ok := m.Get(i); !ok || v != i*2 {
			t.Fatalf("the entry just put is missing")
		}
	}
	m.Put(9_999, 1) // replacing does not evict
	if v, _ := m.Get(9_999); v != 1 {
		t.Fatal("replace failed")
	}
}
