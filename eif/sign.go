package eif

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
)

// ErrSigned: Sign was given an image that is already signed.
var ErrSigned = errors.New("eif: the image is already signed")

// Signer is a release signing key and its certificate, as nitro-cli
// build-enclave takes them (--signing-certificate, --private-key).
type Signer struct {
	// Certificate is the signing certificate file, PEM, embedded in the
	// image as it is (as nitro-cli embeds the file it is given): one
	// CERTIFICATE block of an ECDSA P-384 key. PCR8 is extend(SHA-384 of
	// its DER).
	Certificate []byte
	// Key is the certificate's private key; its Sign returns an ASN.1 DER
	// ECDSA signature, as crypto/ecdsa and every crypto.Signer for ECDSA do.
	Key crypto.Signer
	// Rand is the randomness for the signature.
	Rand io.Reader
}

// Sign writes to dst the image of the given size read from src with a
// signature section appended, as nitro-cli build-enclave writes a signed
// image: PCR0, 1 and 2 are those of src, and PCR8 is that of the
// certificate. It refuses a malformed image, an image already signed, and
// a key that is not the certificate's. It reads src three times (to
// measure, to compute the new CRC, to copy) and holds none of it in memory.
func Sign(dst io.Writer, src io.ReaderAt, size int64, s Signer) (*Measurements, error) {
	if s.Key == nil || s.Rand == nil {
		return nil, errors.New("eif: sign: a key and randomness are required")
	}
	m, err := Measure(src, size)
	if err != nil {
		return nil, err
	}
	if m.PCR8 != nil {
		return nil, ErrSigned
	}
	if int(m.Header.NumSections) == MaxSections {
		return nil, fmt.Errorf("%w: %d sections, no slot left for the signature", ErrLayout, MaxSections)
	}
	cert, err := parseCertificatePEM(s.Certificate)
	if err != nil {
		return nil, err
	}
	if pub, ok := s.Key.Public().(*ecdsa.PublicKey); !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("eif: sign: the key is not the signing certificate's")
	}
	payload := encodePCRInfo(0, m.PCR0)
	digest := sha512.Sum384(sigStructure(payload))
	der, err := s.Key.Sign(s.Rand, digest[:], crypto.SHA384)
	if err != nil {
		return nil, fmt.Errorf("eif: sign: %w", err)
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 {
		return nil, errors.New("eif: sign: the key returned a malformed ECDSA signature")
	}
	if rs.R.BitLen() > es384Size*4 || rs.S.BitLen() > es384Size*4 {
		return nil, errors.New("eif: sign: the key returned a signature too long for P-384")
	}
	sig := make([]byte, es384Size)
	rs.R.FillBytes(sig[:es384Size/2])
	rs.S.FillBytes(sig[es384Size/2:])
	section := encodeSection(s.Certificate, encodeCOSESign1(payload, sig))
	// A faulty signer (an HSM answering for another key) is caught here,
	// not by whoever boots the image.
	if _, err := parseSignature(section, m.PCR0); err != nil {
		return nil, fmt.Errorf("eif: sign: the signature made does not verify: %w", err)
	}
	if uint64(len(section)) > maxSmallSection {
		return nil, fmt.Errorf("%w: signature section of %d bytes", ErrSection, len(section))
	}

	be := binary.BigEndian
	hb := make([]byte, HeaderSize)
	if _, err := src.ReadAt(hb, 0); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrTruncated, err)
	}
	n := int(m.Header.NumSections)
	be.PutUint16(hb[26:], uint16(n+1))
	be.PutUint64(hb[28+8*n:], uint64(size))
	be.PutUint64(hb[28+8*MaxSections+8*n:], uint64(len(section)))
	sh := make([]byte, SectionHeaderSize)
	be.PutUint16(sh, SectionSignature)
	be.PutUint64(sh[4:], uint64(len(section)))

	crc := crc32.NewIEEE()
	crc.Write(hb[:HeaderSize-4])
	body := io.NewSectionReader(src, HeaderSize, size-HeaderSize)
	if _, err := io.Copy(crc, body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTruncated, err)
	}
	crc.Write(sh)
	crc.Write(section)
	be.PutUint32(hb[HeaderSize-4:], crc.Sum32())

	if _, err := dst.Write(hb); err != nil {
		return nil, err
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, HeaderSize, size-HeaderSize)); err != nil {
		return nil, err
	}
	if _, err := dst.Write(sh); err != nil {
		return nil, err
	}
	if _, err := dst.Write(section); err != nil {
		return nil, err
	}
	m.PCR8, m.SigningCertificate = pcr8(cert), cert
	m.Sections = append(m.Sections, SectionSignature)
	m.Header.NumSections++
	m.Header.Offsets[n], m.Header.Sizes[n] = uint64(size), uint64(len(section))
	m.Header.CRC = crc.Sum32()
	return m, nil
}
