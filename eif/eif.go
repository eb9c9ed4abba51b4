package eif

import (
	"bytes"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// Magic is ".eif".
var Magic = [4]byte{'.', 'e', 'i', 'f'}

// Section types.
const (
	SectionKernel    = 1
	SectionCmdline   = 2
	SectionRamdisk   = 3
	SectionSignature = 4
	SectionMetadata  = 5
)

// Errors, one per kind of malformed image.
var (
	ErrTruncated = errors.New("eif: truncated")
	ErrMagic     = errors.New("eif: not an enclave image file")
	ErrVersion   = errors.New("eif: unsupported version")
	ErrLayout    = errors.New("eif: sections overlap, leave gaps or disagree with the header")
	ErrSection   = errors.New("eif: invalid section")
	ErrCRC       = errors.New("eif: CRC mismatch")
	ErrTooLarge  = errors.New("eif: too large")
)

// Header is the EIF header.
type Header struct {
	Version     uint16
	Flags       uint16
	DefaultMem  uint64
	DefaultCPUs uint64
	NumSections uint16
	Offsets     [MaxSections]uint64
	Sizes       [MaxSections]uint64
	CRC         uint32
}

// Measurements are an image's PCRs, 48 bytes each; PCR8 is nil for an
// unsigned image.
type Measurements struct {
	PCR0, PCR1, PCR2, PCR8 []byte
	// SigningCertificate is the certificate of a signed image, whose key
	// signed the image's PCR0 (checked); nil for an unsigned image.
	SigningCertificate *x509.Certificate
	// Sections lists the section types in file order.
	Sections []uint16
	Header   Header
}

// PCRHex returns the measurements as lowercase hex by name ("pcr0", …).
func (m *Measurements) PCRHex() map[string]string {
	out := map[string]string{"pcr0": hex.EncodeToString(m.PCR0), "pcr1": hex.EncodeToString(m.PCR1), "pcr2": hex.EncodeToString(m.PCR2)}
	if m.PCR8 != nil {
		out["pcr8"] = hex.EncodeToString(m.PCR8)
	}
	return out
}

func parseHeader(b []byte) (Header, error) {
	var h Header
	if !bytes.Equal(b[:4], Magic[:]) {
		return h, ErrMagic
	}
	be := binary.BigEndian
	h.Version = be.Uint16(b[4:])
	h.Flags = be.Uint16(b[6:])
	h.DefaultMem = be.Uint64(b[8:])
	h.DefaultCPUs = be.Uint64(b[16:])
	// b[24:26] reserved
	h.NumSections = be.Uint16(b[26:])
	pos := 28
	for i := range MaxSections {
		h.Offsets[i] = be.Uint64(b[pos:])
		pos += 8
	}
	for i := range MaxSections {
		h.Sizes[i] = be.Uint64(b[pos:])
		pos += 8
	}
	pos += 4 // unused
	h.CRC = be.Uint32(b[pos:])
	if h.Version < minVersion || h.Version > maxVersion {
		return h, fmt.Errorf("%w: %d (want %d..%d)", ErrVersion, h.Version, minVersion, maxVersion)
	}
	if h.NumSections == 0 || int(h.NumSections) > MaxSections {
		return h, fmt.Errorf("%w: %d sections", ErrLayout, h.NumSections)
	}
	for i := int(h.NumSections); i < MaxSections; i++ {
		if h.Offsets[i] != 0 || h.Sizes[i] != 0 {
			return h, fmt.Errorf("%w: unused slot %d is not zero", ErrLayout, i)
		}
	}
	return h, nil
}

// Measure parses an image of the given size from r, checks its structure
// and CRC, and computes its PCRs. Every length is checked against the file
// before anything is read or allocated.
func Measure(r io.ReaderAt, size int64) (*Measurements, error) {
	if size > MaxImage {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	if size < HeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, size, HeaderSize)
	}
	hb := make([]byte, HeaderSize)
	if _, err := r.ReadAt(hb, 0); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrTruncated, err)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	crc := crc32.NewIEEE()
	crc.Write(hb[:HeaderSize-4])
	image, boot, app := sha512.New384(), sha512.New384(), sha512.New384()
	m := &Measurements{Header: h}
	pos := int64(HeaderSize)
	ramdisks, kernels, cmdlines, signatures, metadata := 0, 0, 0, 0, 0
	var signature []byte
	var sigBuf bytes.Buffer
	for i := 0; i < int(h.NumSections); i++ {
		if h.Offsets[i] != uint64(pos) {
			return nil, fmt.Errorf("%w: section %d at %d, header says %d", ErrLayout, i, pos, h.Offsets[i])
		}
		if size-pos < SectionHeaderSize {
			return nil, fmt.Errorf("%w: section %d header", ErrTruncated, i)
		}
		sh := make([]byte, SectionHeaderSize)
		if _, err := r.ReadAt(sh, pos); err != nil {
			return nil, fmt.Errorf("%w: section %d header: %v", ErrTruncated, i, err)
		}
		typ := binary.BigEndian.Uint16(sh)
		n := binary.BigEndian.Uint64(sh[4:])
		if n != h.Sizes[i] {
			return nil, fmt.Errorf("%w: section %d is %d bytes, header says %d", ErrLayout, i, n, h.Sizes[i])
		}
		pos += SectionHeaderSize
		if n > uint64(size-pos) {
			return nil, fmt.Errorf("%w: section %d of %d bytes runs past the end", ErrTruncated, i, n)
		}
		crc.Write(sh)
		data := io.NewSectionReader(r, pos, int64(n))
		var sinks []io.Writer
		switch typ {
		case SectionKernel:
			kernels++
			if i != 0 {
				return nil, fmt.Errorf("%w: the kernel must be the first section", ErrSection)
			}
			sinks = []io.Writer{image, boot}
		case SectionCmdline:
			cmdlines++
			if i != 1 {
				return nil, fmt.Errorf("%w: the cmdline must be the second section", ErrSection)
			}
			sinks = []io.Writer{image, boot}
		case SectionRamdisk:
			if ramdisks == 0 {
				sinks = []io.Writer{image, boot}
			} else {
				sinks = []io.Writer{image, app}
			}
			ramdisks++
		case SectionSignature:
			signatures++
			if n > maxSmallSection {
				return nil, fmt.Errorf("%w: signature section of %d bytes", ErrSection, n)
			}
			sinks = []io.Writer{&sigBuf}
		case SectionMetadata:
			metadata++
			if n > maxSmallSection {
				return nil, fmt.Errorf("%w: metadata section of %d bytes", ErrSection, n)
			}
		default:
			return nil, fmt.Errorf("%w: type %d", ErrSection, typ)
		}
		sinks = append(sinks, crc)
		if _, err := io.Copy(io.MultiWriter(sinks...), data); err != nil {
			return nil, fmt.Errorf("%w: section %d: %v", ErrTruncated, i, err)
		}
		if typ == SectionSignature {
			signature = sigBuf.Bytes()
		}
		m.Sections = append(m.Sections, typ)
		pos += int64(n)
	}
	if pos != size {
		return nil, fmt.Errorf("%w: %d bytes after the last section", ErrLayout, size-pos)
	}
	if kernels != 1 || cmdlines != 1 || ramdisks == 0 || signatures > 1 || metadata > 1 {
		return nil, fmt.Errorf("%w: want one kernel, one cmdline, ramdisks, at most one signature and metadata", ErrSection)
	}
	if got := crc.Sum32(); got != h.CRC {
		return nil, fmt.Errorf("%w: computed %08x, header says %08x", ErrCRC, got, h.CRC)
	}
	m.PCR0, m.PCR1, m.PCR2 = extend(image), extend(boot), extend(app)
	if signatures == 1 { // even an empty section: it is a (malformed) signature
		cert, err := parseSignature(signature, m.PCR0)
		if err != nil {
			return nil, err
		}
		m.PCR8, m.SigningCertificate = pcr8(cert), cert
	}
	return m, nil
}

// extend is the TPM-style extension of a zero register: H(0⁴⁸ ‖ H(data)).
func extend(h hash.Hash) []byte {
	sum := h.Sum(nil)
	out := sha512.Sum384(append(make([]byte, sha512.Size384), sum...))
	return out[:]
}
