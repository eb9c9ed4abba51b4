package attestation

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Policy says what a verified document must satisfy beyond its signature and
// chain. The zero Policy is not usable: a verification time (At or Clock)
// must be given, so nothing silently falls back to the system clock.
type Policy struct {
	// Roots are the trusted roots. Nil means the AWS Nitro Enclaves
	// Root-G1, pinned by AWSRootFingerprint. The root carried in the
	// document's cabundle is never trusted on its own.
	Roots []*x509.Certificate
	// PCRs pins PCR values by index (0..31): each must be present in the
	// document and equal, byte for byte.
	PCRs map[int][]byte
	// Allowed, if not empty, are the measurements the document may match:
	// it must match one of them whole (every PCR that one pins), inside
	// that measurement's validity window. A document matching PCR0 of one
	// and PCR1 of another matches neither. Document.Measurement names the
	// one matched. Releases.Measurements makes them from releases.json.
	Allowed []Measurement
	// Nonce, if non-nil, must equal the document's nonce.
	Nonce []byte
	// PublicKey, if non-nil, must equal the document's public_key.
	PublicKey []byte
	// MaxAge, if positive, bounds how old the document's timestamp may be at
	// the verification time.
	MaxAge time.Duration
	// ClockSkew is how far the timestamp may be ahead of the verification
	// time; zero means DefaultClockSkew.
	ClockSkew time.Duration
	// AllowDebug accepts documents of debug-mode enclaves (PCR0, PCR1 and
	// PCR2 all zero). Never set it in production.
	AllowDebug bool
	// At verifies the document as of this time (archived documents). It
	// takes precedence over Clock.
	At time.Time
	// Clock supplies the verification time when At is zero.
	Clock func() time.Time
}

// Document is a verified attestation document.
type Document struct {
	ModuleID  string
	Timestamp time.Time
	Digest    string
	// PCRs maps each index present in the document to its 48-byte value.
	PCRs map[int][]byte
	// Certificate is the leaf that signed the document; Chain is the
	// verified path from it to the pinned root, leaf first.
	Certificate *x509.Certificate
	Chain       []*x509.Certificate
	// PublicKey, UserData and Nonce are nil when the document has none.
	PublicKey []byte
	UserData  []byte
	Nonce     []byte
	// Debug reports a debug-mode enclave; Verify returns such a document
	// only when the policy allows debug documents.
	Debug bool
	// Measurement is the name of the Policy.Allowed entry the document
	// matched ("" when the policy allows no list).
	Measurement string
}

var zeroPCR [pcrLenSHA384]byte

// Verify checks an attestation document against a policy and returns it
// verified, or an error that wraps the sentinel of the first rule it breaks.
// No input makes it panic.
func Verify(doc []byte, p Policy) (d *Document, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = nil, fmt.Errorf("%w: decoder failure", ErrMalformed)
		}
	}()
	return verify(doc, &p)
}

func verify(doc []byte, p *Policy) (*Document, error) {
	at, roots, err := p.resolve()
	if err != nil {
		return nil, err
	}
	if len(doc) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(doc), MaxDocumentSize)
	}
	if len(doc) == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrMalformed)
	}
	protected, body, sig, err := decodeSign1(doc)
	if err != nil {
		return nil, err
	}
	pl, err := decodePayload(body)
	if err != nil {
		return nil, err
	}

	leaf, err := x509.ParseCertificate(pl.certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: leaf: %v", ErrCertificate, err)
	}
	leafKey, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || leafKey.Curve != elliptic.P384() {
		return nil, fmt.Errorf("%w: leaf key is not ECDSA P-384", ErrLeafProfile)
	}
	if leaf.SignatureAlgorithm != x509.ECDSAWithSHA384 {
		return nil, fmt.Errorf("%w: leaf signed with %v", ErrLeafProfile, leaf.SignatureAlgorithm)
	}
	// cabundle[0] is the root as the document carries it: ignored. The
	// rest are the intermediates, root side first.
	intermediates := x509.NewCertPool()
	certs := []*x509.Certificate{leaf}
	for i, der := range pl.cabundle[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: cabundle[%d]: %v", ErrCertificate, i+1, err)
		}
		intermediates.AddCert(c)
		certs = append(certs, c)
	}
	for _, c := range certs {
		if err := validAt(c, at); err != nil {
			return nil, err
		}
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: intermediates,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			// Only a pinned root can be out of its validity here: the
			// leaf and intermediates were checked above.
			if err := validAt(invalid.Cert, at); err != nil {
				return nil, err
			}
		}
		return nil, fmt.Errorf("%w: %v", ErrUntrustedChain, err)
	}

	if err := checkSignature(leafKey, protected, body, sig); err != nil {
		return nil, err
	}

	ts := time.UnixMilli(int64(min(pl.timestamp, 1<<62))).UTC()
	if ts.Before(leaf.NotBefore) || ts.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%w: %s not in [%s, %s]", ErrTimestamp,
			ts.Format(time.RFC3339), leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}

	d := &Document{
		ModuleID:    pl.moduleID,
		Timestamp:   ts,
		Digest:      pl.digest,
		PCRs:        pl.pcrs,
		Certificate: leaf,
		Chain:       chains[0],
		PublicKey:   pl.publicKey,
		UserData:    pl.userData,
		Nonce:       pl.nonce,
		Debug:       isDebug(pl.pcrs),
	}
	if err := p.check(d, at); err != nil {
		return nil, err
	}
	return d, nil
}

// resolve validates the policy and returns the verification time and roots.
func (p *Policy) resolve() (time.Time, []*x509.Certificate, error) {
	at := p.At
	if at.IsZero() {
		if p.Clock == nil {
			return time.Time{}, nil, fmt.Errorf("%w: neither At nor Clock is set", ErrPolicy)
		}
		at = p.Clock()
	}
	for i, v := range p.PCRs {
		if i < 0 || i >= maxPCRs {
			return time.Time{}, nil, fmt.Errorf("%w: PCR pin index %d", ErrPolicy, i)
		}
		if len(v) != pcrLenSHA384 {
			return time.Time{}, nil, fmt.Errorf("%w: PCR%d pin is %d bytes, want %d", ErrPolicy, i, len(v), pcrLenSHA384)
		}
	}
	for i := range p.Allowed {
		if err := p.Allowed[i].check(); err != nil {
			return time.Time{}, nil, fmt.Errorf("%w: allowed measurement %d: %v", ErrPolicy, i, err)
		}
	}
	if p.MaxAge < 0 || p.ClockSkew < 0 {
		return time.Time{}, nil, fmt.Errorf("%w: negative duration", ErrPolicy)
	}
	roots := p.Roots
	if roots == nil {
		root, err := AWSRoot()
		if err != nil {
			return time.Time{}, nil, err
		}
		roots = []*x509.Certificate{root}
	}
	if len(roots) == 0 {
		return time.Time{}, nil, fmt.Errorf("%w: empty root set", ErrPolicy)
	}
	return at, roots, nil
}

func (p *Policy) check(d *Document, at time.Time) error {
	if d.Debug && !p.AllowDebug {
		return ErrDebug
	}
	for i, want := range p.PCRs {
		got, ok := d.PCRs[i]
		if !ok {
			return fmt.Errorf("%w: PCR%d absent", ErrPCRMismatch, i)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%w: PCR%d is %x, want %x", ErrPCRMismatch, i, got, want)
		}
	}
	if len(p.Allowed) > 0 {
		name, err := match(p.Allowed, d.PCRs, at)
		if err != nil {
			return err
		}
		d.Measurement = name
	}
	if p.Nonce != nil && !bytes.Equal(d.Nonce, p.Nonce) {
		return ErrNonceMismatch
	}
	if p.PublicKey != nil && !bytes.Equal(d.PublicKey, p.PublicKey) {
		return ErrPublicKeyMismatch
	}
	skew := p.ClockSkew
	if skew == 0 {
		skew = DefaultClockSkew
	}
	if d.Timestamp.After(at.Add(skew)) {
		return fmt.Errorf("%w: %s is after %s", ErrFutureTimestamp, d.Timestamp.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	if p.MaxAge > 0 && at.Sub(d.Timestamp) > p.MaxAge {
		return fmt.Errorf("%w: age %s exceeds %s", ErrStale, at.Sub(d.Timestamp).Round(time.Millisecond), p.MaxAge)
	}
	return nil
}

func validAt(c *x509.Certificate, at time.Time) error {
	if at.Before(c.NotBefore) {
		return fmt.Errorf("%w: %q valid from %s", ErrCertificateNotYetValid, c.Subject.CommonName, c.NotBefore.Format(time.RFC3339))
	}
	if at.After(c.NotAfter) {
		return fmt.Errorf("%w: %q expired at %s", ErrCertificateExpired, c.Subject.CommonName, c.NotAfter.Format(time.RFC3339))
	}
	return nil
}

func isDebug(pcrs map[int][]byte) bool {
	for i := range 3 {
		v, ok := pcrs[i]
		if !ok || !bytes.Equal(v, zeroPCR[:]) {
			return false
		}
	}
	return true
}

// checkSignature verifies the ES384 signature over the COSE Sig_structure
// ["Signature1", protected, h”, payload] (RFC 9052 §4.4).
func checkSignature(key *ecdsa.PublicKey, protected, body, sig []byte) error {
	h := sha512.New384()
	h.Write(SigStructure(protected, body))
	digest := h.Sum(nil)
	r := new(big.Int).SetBytes(sig[:48])
	s := new(big.Int).SetBytes(sig[48:])
	if !ecdsa.Verify(key, digest, r, s) {
		return ErrSignature
	}
	return nil
}

// SigStructure returns the COSE_Sign1 Sig_structure for an empty external
// AAD: the bytes an ES384 attestation signature covers.
func SigStructure(protected, body []byte) []byte {
	out := make([]byte, 0, 32+len(protected)+len(body))
	out = append(out, 0x84)            // array(4)
	out = append(out, 0x6a)            // text(10)
	out = append(out, "Signature1"...) // context
	out = appendBytesHead(out, len(protected))
	out = append(out, protected...)
	out = append(out, 0x40) // external_aad = h''
	out = appendBytesHead(out, len(body))
	return append(out, body...)
}

func appendBytesHead(out []byte, n int) []byte {
	switch {
	case n < 24:
		return append(out, 0x40|byte(n))
	case n <= 0xff:
		return append(out, 0x58, byte(n))
	case n <= 0xffff:
		return append(out, 0x59, byte(n>>8), byte(n))
	default:
		return append(out, 0x5a, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}
