package sealfmt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func header() *Header {
	return &Header{Sealer: "dev", SignerID: "signer-a", Generation: 3, Epochs: 2,
		WrappedKey: bytes.Repeat([]byte{7}, 60), Nonce: bytes.Repeat([]byte{9}, NonceSize), SealedAt: 1700000000}
}

// sealed is a well-formed file: h's header and a ciphertext of the length
// its epochs need (the bytes are not checked here).
func sealed(t *testing.T, h *Header, extra int) []byte {
	t.Helper()
	b, err := AppendHeader(nil, h)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, make([]byte, int(h.Epochs)*SecretSize+TagSize+extra)...)
}

func TestParseReturnsTheHeaderAppended(t *testing.T) {
	h := header()
	b := sealed(t, h, 0)
	got, end, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h, got) {
		t.Fatalf("parsed %+v, appended %+v", got, h)
	}
	if want := len(b) - int(h.Epochs)*SecretSize - TagSize; end != want {
		t.Fatalf("ciphertext at %d, want %d", end, want)
	}
	if string(b[:4]) != "NSKR" || b[4] != 1 || int(binary.BigEndian.Uint32(b[5:9])) != end-9 {
		t.Fatalf("prefix % x", b[:9])
	}
}

// raw is a file whose header is the bytes hb, with a ciphertext of the
// length epochs need.
func raw(hb []byte, epochs int) []byte {
	b := binary.BigEndian.AppendUint32([]byte("NSKR\x01"), uint32(len(hb)))
	return append(append(b, hb...), make([]byte, epochs*SecretSize+TagSize)...)
}

func TestParseRefusesMalformed(t *testing.T) {
	with := func(f func(*Header)) *Header { h := header(); f(h); return h }
	good := sealed(t, header(), 0)
	hb := good[9 : len(good)-2*SecretSize-TagSize]
	// The header's entries, as AppendHeader writes them: a7, then key 1
	// ("dev"), key 2 ("signer-a"), key 3 (generation 3) and the rest.
	one, two := []byte("\x01\x63dev"), []byte("\x02\x68signer-a")
	rest := hb[1+len(one)+len(two):]
	if !bytes.HasPrefix(hb, append(append([]byte{0xa7}, one...), two...)) || !bytes.HasPrefix(rest, []byte{0x03, 0x03}) {
		t.Fatalf("the header is not encoded as this test expects: % x", hb)
	}
	reordered := append(append(append([]byte{0xa7}, two...), one...), rest...)
	longInt := append(append(append(append([]byte{0xa7}, one...), two...), 0x03, 0x18, 0x03), rest[2:]...)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"bad_empty", nil},
		{"bad_magic", append([]byte("NSKX"), good[4:]...)},
		{"bad_version", append(append([]byte("NSKR"), 2), good[5:]...)},
		{"bad_header_length_zero", append([]byte("NSKR\x01\x00\x00\x00\x00"), good[9:]...)},
		{"bad_header_length_past_end", append([]byte("NSKR\x01\x00\x00\xff\xff"), good[9:]...)},
		{"bad_header_not_cbor", append([]byte("NSKR\x01\x00\x00\x00\x01\xff"), make([]byte, 80)...)},
		{"bad_header_keys_out_of_order", raw(reordered, 2)},
		{"bad_header_integer_longer_than_it_needs", raw(longInt, 2)},
		{"bad_no_sealer", sealed(t, with(func(h *Header) { h.Sealer = "" }), 0)},
		{"bad_no_wrapped_key", sealed(t, with(func(h *Header) { h.WrappedKey = nil }), 0)},
		{"bad_generation_zero", sealed(t, with(func(h *Header) { h.Generation = 0 }), 0)},
		{"bad_epochs_zero", sealed(t, with(func(h *Header) { h.Epochs = 0 }), 0)},
		{"bad_epochs_over_max", sealed(t, with(func(h *Header) { h.Epochs = MaxEpochs + 1 }), 0)},
		{"bad_nonce_size", sealed(t, with(func(h *Header) { h.Nonce = h.Nonce[:8] }), 0)},
		{"bad_ciphertext_long", sealed(t, header(), 1)},
		{"bad_ciphertext_short", good[:len(good)-1]},
		{"bad_over_max_size", make([]byte, MaxSize+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, err := Parse(tc.b)
			if !errors.Is(err, ErrMalformed) || h != nil {
				t.Fatalf("Parse: %v, %v; want ErrMalformed and no header", h, err)
			}
		})
	}
}

func TestAppendHeaderRefusesAnOversizedHeader(t *testing.T) {
	h := header()
	h.WrappedKey = make([]byte, MaxHeader)
	if _, err := AppendHeader(nil, h); err == nil {
		t.Fatal("appended a header over MaxHeader")
	}
}

// FuzzParse: Parse never panics, refuses only with ErrMalformed, and what
// it accepts appends back to the same header bytes (no two encodings of
// one header), with the ciphertext exactly its epochs' length.
func FuzzParse(f *testing.F) {
	b, _ := AppendHeader(nil, header())
	f.Add(append(b, make([]byte, 2*SecretSize+TagSize)...))
	f.Add([]byte("NSKR\x01\x00\x00\x00\x01\xa0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, end, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || h != nil {
				t.Fatalf("refusal %v with header %v", err, h)
			}
			return
		}
		again, err := AppendHeader(nil, h)
		if err != nil || !bytes.Equal(again, b[:end]) {
			t.Fatalf("accepted a header that does not append back to its bytes: %v", err)
		}
		if len(b)-end != int(h.Epochs)*SecretSize+TagSize {
			t.Fatalf("accepted %d ciphertext bytes for %d epochs", len(b)-end, h.Epochs)
		}
	})
}
