package envelope

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
)

// errSPIFFEID marks an identity that is not a SPIFFE ID as the SPIFFE-ID
// specification defines it.
var errSPIFFEID = errors.New("not a SPIFFE ID")

// Bounds of the SPIFFE-ID specification (§2.3, §2.4 and X509-SVID §2).
const (
	maxSPIFFEID    = 2048
	maxTrustDomain = 255
)

// parseSPIFFEID parses id exactly as the SPIFFE-ID specification writes
// one: the scheme "spiffe" in lower case, "://", a trust domain of lower-case
// letters, digits, '.', '-' and '_', then zero or more path segments, each
// "/" and one or more letters, digits, '.', '-' or '_' and neither "." nor
// "..". There is no percent-encoding, query, fragment, user info or port to
// decode; anything else is refused rather than normalised, so an ID means
// the same to the enclave as to every other reader of the certificate.
func parseSPIFFEID(id string) (trustDomain string, segments []string, err error) {
	if len(id) > maxSPIFFEID {
		return "", nil, fmt.Errorf("%w: longer than %d bytes", errSPIFFEID, maxSPIFFEID)
	}
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return "", nil, fmt.Errorf("%w: scheme is not spiffe://", errSPIFFEID)
	}
	trustDomain, path, _ := strings.Cut(rest, "/")
	if trustDomain == "" || len(trustDomain) > maxTrustDomain {
		return "", nil, fmt.Errorf("%w: trust domain of %d bytes, want 1..%d", errSPIFFEID, len(trustDomain), maxTrustDomain)
	}
	for i := 0; i < len(trustDomain); i++ {
		if c := trustDomain[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return "", nil, fmt.Errorf("%w: byte %q in the trust domain", errSPIFFEID, c)
		}
	}
	if len(rest) == len(trustDomain) {
		return trustDomain, nil, nil // the trust domain's own ID
	}
	segments = strings.Split(path, "/")
	for _, seg := range segments {
		switch seg {
		case "":
			return "", nil, fmt.Errorf("%w: empty path segment", errSPIFFEID)
		case ".", "..":
			return "", nil, fmt.Errorf("%w: dot path segment", errSPIFFEID)
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
				return "", nil, fmt.Errorf("%w: byte %q in the path", errSPIFFEID, c)
			}
		}
	}
	return trustDomain, segments, nil
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// uriSANs returns the certificate's URI SANs as the certificate writes
// them. crypto/x509 gives them only as parsed url.URLs, whose Path is
// percent-decoded ("/%61dmin" reads "/admin") and whose Scheme is lower-cased.
func uriSANs(c *x509.Certificate) ([]string, error) {
	var uris []string
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var seq asn1.RawValue
		rest, err := asn1.Unmarshal(ext.Value, &seq)
		if err != nil || len(rest) != 0 || seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
			return nil, errors.New("subject alternative names do not parse")
		}
		for names := seq.Bytes; len(names) > 0; {
			var name asn1.RawValue
			if names, err = asn1.Unmarshal(names, &name); err != nil {
				return nil, errors.New("subject alternative names do not parse")
			}
			const uniformResourceIdentifier = 6
			if name.Class == asn1.ClassContextSpecific && name.Tag == uniformResourceIdentifier && !name.IsCompound {
				uris = append(uris, string(name.Bytes))
			}
		}
	}
	return uris, nil
}
