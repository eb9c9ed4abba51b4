package eif_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/nitro-signer/nitro-signer/eif"
)

// pcr computes extend(SHA-384(parts…)) independently of the package.
func pcr(parts ...[]byte) []byte {
	h := sha512.New384()
	for _, p := range parts {
		h.Write(p)
	}
	inner := h.Sum(nil)
	out := sha512.Sum384(append(make([]byte, 48), inner...))
	return out[:]
}

var (
	kernel   = bytes.Repeat([]byte("kernel"), 1000)
	cmdline  = []byte("reboot=k panic=30 pci=off nomodules console=ttyS0 random.trust_cpu=on")
	metadata = []byte(`{"ImageName":"nitro-signer","ImageVersion":"1"}`)
	initrd   = bytes.Repeat([]byte("bootstrap ramdisk"), 500)
	app1     = bytes.Repeat([]byte("customer ramdisk one"), 700)
	app2     = []byte("customer ramdisk two")
)

func standard(extra ...eif.Section) eif.Image {
	s := []eif.Section{
		{Type: eif.SectionKernel, Data: kernel},
		{Type: eif.SectionCmdline, Data: cmdline},
		{Type: eif.SectionMetadata, Data: metadata},
		{Type: eif.SectionRamdisk, Data: initrd},
		{Type: eif.SectionRamdisk, Data: app1},
		{Type: eif.SectionRamdisk, Data: app2},
	}
	return eif.Image{DefaultMem: 512 << 20, DefaultCPUs: 2, Sections: append(s, extra...)}
}

func write(t testing.TB, img eif.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := eif.Write(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func measure(b []byte) (*eif.Measurements, error) {
	return eif.Measure(bytes.NewReader(b), int64(len(b)))
}

func TestMeasureMatchesIndependentPCRs(t *testing.T) {
	signer, certDER := newSigner(t)
	tests := []struct {
		name string
		b    []byte
		pcr0 []byte
		pcr1 []byte
		pcr2 []byte
		pcr8 []byte
	}{
		{"unsigned_three_ramdisks", write(t, standard()), pcr(kernel, cmdline, initrd, app1, app2), pcr(kernel, cmdline, initrd), pcr(app1, app2), nil},
		{"one_ramdisk", write(t, eif.Image{Sections: []eif.Section{{Type: eif.SectionKernel, Data: kernel}, {Type: eif.SectionCmdline, Data: cmdline},
			{Type: eif.SectionRamdisk, Data: initrd}}}), pcr(kernel, cmdline, initrd), pcr(kernel, cmdline, initrd), pcr(), nil},
		{"signed", signedImage(t, standard(), signer), pcr(kernel, cmdline, initrd, app1, app2), pcr(kernel, cmdline, initrd), pcr(app1, app2), pcr(certDER)},
		{"version_2_empty_cmdline", write(t, eif.Image{Version: 2, Sections: []eif.Section{{Type: eif.SectionKernel, Data: kernel}, {Type: eif.SectionCmdline},
			{Type: eif.SectionRamdisk, Data: initrd}, {Type: eif.SectionRamdisk, Data: app1}}}), pcr(kernel, initrd, app1), pcr(kernel, initrd), pcr(app1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := measure(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			for name, pair := range map[string][2][]byte{"PCR0": {m.PCR0, tt.pcr0}, "PCR1": {m.PCR1, tt.pcr1}, "PCR2": {m.PCR2, tt.pcr2}, "PCR8": {m.PCR8, tt.pcr8}} {
				if !bytes.Equal(pair[0], pair[1]) {
					t.Errorf("%s = %x, want %x", name, pair[0], pair[1])
				}
			}
		})
	}
	// The metadata section does not change the measurements.
	a, _ := measure(write(t, standard()))
	other := standard()
	other.Sections[2].Data = []byte(`{"ImageName":"other"}`)
	b, _ := measure(write(t, other))
	if !bytes.Equal(a.PCR0, b.PCR0) {
		t.Fatal("metadata changed PCR0")
	}
}

func TestMeasureRefusesMalformedImages(t *testing.T) {
	good := write(t, standard())
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	// recrc recomputes the CRC so that a structural fault is reported as
	// such, not as a CRC mismatch.
	recrc := func(b []byte) []byte {
		m, err := crcOf(b)
		if err == nil {
			binary.BigEndian.PutUint32(b[eif.HeaderSize-4:], m)
		}
		return b
	}
	const sizesAt = 28 + 8*eif.MaxSections
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"bad_empty", nil, eif.ErrTruncated},
		{"bad_short_header", good[:100], eif.ErrTruncated},
		{"bad_truncated_in_section", good[:len(good)-10], eif.ErrTruncated},
		{"bad_truncated_after_header", good[:eif.HeaderSize+5], eif.ErrTruncated},
		{"bad_magic", mutate(func(b []byte) []byte { b[0] = 'x'; return b }), eif.ErrMagic},
		{"bad_version_1", mutate(func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 1); return recrc(b) }), eif.ErrVersion},
		{"bad_version_99", mutate(func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 99); return recrc(b) }), eif.ErrVersion},
		{"bad_crc", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), eif.ErrCRC},
		{"bad_crc_field", mutate(func(b []byte) []byte { b[eif.HeaderSize-1] ^= 1; return b }), eif.ErrCRC},
		{"bad_zero_sections", mutate(func(b []byte) []byte { binary.BigEndian.PutUint16(b[26:], 0); return recrc(b) }), eif.ErrLayout},
		{"bad_too_many_sections", mutate(func(b []byte) []byte { binary.BigEndian.PutUint16(b[26:], 33); return recrc(b) }), eif.ErrLayout},
		{"bad_overlapping_offset", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[28+8:], binary.BigEndian.Uint64(b[28+8:])-4)
			return recrc(b)
		}), eif.ErrLayout},
		{"bad_size_disagrees", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[sizesAt:], binary.BigEndian.Uint64(b[sizesAt:])+1)
			return recrc(b)
		}), eif.ErrLayout},
		{"bad_oversized_section", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[sizesAt:], 1<<40)
			binary.BigEndian.PutUint64(b[eif.HeaderSize+4:], 1<<40)
			return recrc(b)
		}), eif.ErrTruncated},
		{"bad_unused_slot", mutate(func(b []byte) []byte { binary.BigEndian.PutUint64(b[28+8*31:], 1); return recrc(b) }), eif.ErrLayout},
		{"bad_trailing_bytes", append(bytes.Clone(good), 0), eif.ErrLayout},
		{"bad_section_type", write(t, eif.Image{Sections: []eif.Section{{Type: eif.SectionKernel, Data: kernel}, {Type: eif.SectionCmdline}, {Type: 9, Data: initrd}}}), eif.ErrSection},
		{"bad_no_ramdisk", write(t, eif.Image{Sections: []eif.Section{{Type: eif.SectionKernel, Data: kernel}, {Type: eif.SectionCmdline}}}), eif.ErrSection},
		{"bad_kernel_not_first", write(t, eif.Image{Sections: []eif.Section{{Type: eif.SectionCmdline}, {Type: eif.SectionKernel, Data: kernel}, {Type: eif.SectionRamdisk, Data: initrd}}}), eif.ErrSection},
		{"bad_two_signatures", write(t, standard(eif.Section{Type: eif.SectionSignature, Data: []byte{0x80}}, eif.Section{Type: eif.SectionSignature, Data: []byte{0x80}})), eif.ErrSection},
		{"bad_signature_not_cbor", write(t, standard(eif.Section{Type: eif.SectionSignature, Data: []byte("nope")})), eif.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := measure(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("Measure: %v, want %v", err, tt.want)
			}
		})
	}
}

// crcOf recomputes an image's CRC the way the format defines it, without
// the package: IEEE CRC-32 of every byte but the CRC field.
func crcOf(b []byte) (uint32, error) {
	if len(b) < eif.HeaderSize {
		return 0, errors.New("short")
	}
	return crc32.ChecksumIEEE(append(bytes.Clone(b[:eif.HeaderSize-4]), b[eif.HeaderSize:]...)), nil
}

func FuzzMeasure(f *testing.F) {
	var b bytes.Buffer
	eif.Write(&b, standard())
	f.Add(b.Bytes())
	f.Add(b.Bytes()[:eif.HeaderSize+20])
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := eif.Measure(bytes.NewReader(data), int64(len(data)))
		if err == nil && (len(m.PCR0) != 48 || len(m.PCR1) != 48 || len(m.PCR2) != 48) {
			t.Fatal("PCRs are not 48 bytes")
		}
	})
}
