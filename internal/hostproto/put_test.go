package hostproto_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/nitro-signer/nitro-signer/internal/hostproto"
)

func TestPutRoundTrips(t *testing.T) {
	for _, seq := range []uint64{1, 2, 1 << 40, ^uint64(0)} {
		sealed := bytes.Repeat([]byte{0xa5}, 100)
		got, b, err := hostproto.DecodePut(hostproto.EncodePut(seq, sealed))
		if err != nil || got != seq || !bytes.Equal(b, sealed) {
			t.Fatalf("seq %d: got %d, %d bytes, %v", seq, got, len(b), err)
		}
	}
}

func TestDecodePutRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"bad_empty", nil},
		{"bad_no_sealed_keyring", hostproto.EncodePut(1, nil)},
		{"bad_short_sequence", []byte{0, 0, 1}},
		{"bad_sequence_zero", hostproto.EncodePut(0, []byte("x"))},
		{"bad_over_max_blob", hostproto.EncodePut(1, make([]byte, hostproto.MaxBlob+1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := hostproto.DecodePut(tc.body); !errors.Is(err, hostproto.ErrMalformedPut) {
				t.Fatalf("err = %v, want ErrMalformedPut", err)
			}
		})
	}
	if _, b, err := hostproto.DecodePut(hostproto.EncodePut(1, make([]byte, hostproto.MaxBlob))); err != nil || len(b) != hostproto.MaxBlob {
		t.Fatalf("a keyring of exactly MaxBlob refused: %v", err)
	}
}

func FuzzDecodePut(f *testing.F) {
	f.Add(hostproto.EncodePut(7, []byte("sealed")))
	f.Add([]byte{})
	f.Add(make([]byte, 9))
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, sealed, err := hostproto.DecodePut(b)
		if err != nil {
			return
		}
		if seq == 0 || len(sealed) == 0 || len(sealed) > hostproto.MaxBlob {
			t.Fatalf("accepted seq %d with %d bytes", seq, len(sealed))
		}
		if !bytes.Equal(hostproto.EncodePut(seq, sealed), b) {
			t.Fatal("decode then encode changed the body")
		}
	})
}
