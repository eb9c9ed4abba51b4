package main

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/eif"
	"github.com/nitro-signer/nitro-signer/internal/atomicfile"
)

// inputFlags collects repeated --input NAME=FILE flags.
type inputFlags map[string]string

func (f inputFlags) String() string { return fmt.Sprintf("%d inputs", len(f)) }

func (f inputFlags) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("want NAME=FILE")
	}
	f[name] = path
	return nil
}

// maxPEMFile bounds the certificate and key files eif sign reads.
const maxPEMFile = 64 << 10

// measureOutput is what eif measure and eif sign print: nitro-cli's
// "Measurements" keys, and for a signed image the checked signature.
type measureOutput struct {
	HashAlgorithm string           `json:"HashAlgorithm"`
	PCR0          string           `json:"PCR0"`
	PCR1          string           `json:"PCR1"`
	PCR2          string           `json:"PCR2"`
	PCR8          string           `json:"PCR8,omitempty"`
	Signature     *signatureOutput `json:"Signature,omitempty"`
}

type signatureOutput struct {
	// Check is always "verified": a bad signature section is an error.
	Check     string `json:"Check"`
	Subject   string `json:"Subject"`
	Issuer    string `json:"Issuer"`
	NotBefore string `json:"NotBefore"`
	NotAfter  string `json:"NotAfter"`
}

func newMeasureOutput(m *eif.Measurements) measureOutput {
	out := measureOutput{HashAlgorithm: "SHA384", PCR0: hexOrEmpty(m.PCR0), PCR1: hexOrEmpty(m.PCR1), PCR2: hexOrEmpty(m.PCR2), PCR8: hexOrEmpty(m.PCR8)}
	if c := m.SigningCertificate; c != nil {
		out.Signature = &signatureOutput{Check: "verified: ES384 over this image's PCR0 by the signing certificate's key",
			Subject: c.Subject.String(), Issuer: c.Issuer.String(),
			NotBefore: c.NotBefore.UTC().Format(time.RFC3339), NotAfter: c.NotAfter.UTC().Format(time.RFC3339)}
	}
	return out
}

// certificateUsable refuses a signing certificate outside its validity at
// now: nitro-cli run-enclave refuses to start an image signed with it.
func certificateUsable(c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fmt.Errorf("the signing certificate is valid %s to %s, not now: nitro-cli run-enclave refuses an image signed with it",
			c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// eifFail prints an image error with its rule.
func eifFail(stderr io.Writer, cmd string, err error) int {
	if rule := eif.Rule(err); rule != "" {
		fmt.Fprintf(stderr, "%s: rule=%s: %v\n", cmd, rule, err)
	} else {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
	}
	return 1
}

// measureFile measures the image at path.
func measureFile(path string) (*eif.Measurements, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return eif.Measure(f, st.Size())
}

// eifMeasure: signerctl eif measure FILE.eif [--manifest --version V --input NAME=FILE...]
// or [--releases FILE --version V --not-before T [--not-after T] [--match PCRS]].
func eifMeasure(args []string, stdout, stderr io.Writer) int {
	cmd := command("eif measure")
	flags := cmd.Flags
	manifest := flags.Bool("manifest", false, "print a pcrs.json manifest instead of the measurements")
	releases := flags.String("releases", "", "append the image as a release to the releases.json `FILE` (created if absent)")
	version := flags.String("version", "", "with --manifest or --releases: the image `VERSION`")
	inputs := inputFlags{}
	flags.Var(inputs, "input", "with --manifest: a build input `NAME=FILE` whose SHA-256 is recorded (repeatable)")
	notBefore := flags.String("not-before", "", "with --releases: the release is accepted from this `RFC3339` time")
	notAfter := flags.String("not-after", "", "with --releases: the release is accepted until this `RFC3339` time (default: no end)")
	match := flags.String("match", "", "with --releases: the `PCRS` a policy pins, comma-separated: pcr0,pcr1,pcr2 (the default), pcr8 (any image signed\n"+
		"with the release certificate) or pcr0,pcr8 (this image, and only signed)")
	signedBy := flags.String("signed-by", "", "fail unless the image is signed with the certificate `PEM` (nitro-cli has been known to build unsigned\n"+
		"when asked to sign: aws-nitro-enclaves-cli#756)")
	path, code, ok := cmd.ParseArg(args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case *manifest && *releases != "":
		return cmd.UsageError(stderr, "--manifest (pcrs.json) and --releases (releases.json) exclude each other")
	case *releases == "" && (*notBefore != "" || *notAfter != "" || *match != ""):
		return cmd.UsageError(stderr, "--not-before, --not-after and --match go with --releases")
	case !*manifest && len(inputs) > 0:
		return cmd.UsageError(stderr, "--input goes with --manifest")
	case !*manifest && *releases == "" && *version != "":
		return cmd.UsageError(stderr, "--version goes with --manifest or --releases")
	}
	var release *attestation.Release
	if *releases != "" {
		var err error
		if release, err = releaseFlags(*version, *notBefore, *notAfter, *match); err != nil {
			return cmd.UsageError(stderr, "%v", err)
		}
	}
	m, err := measureFile(path)
	if err != nil {
		return eifFail(stderr, "eif measure", err)
	}
	if *signedBy != "" {
		if err := checkSignedBy(m, *signedBy); err != nil {
			fmt.Fprintf(stderr, "eif measure: --signed-by: %v\n", err)
			return 1
		}
	}
	switch {
	case *manifest:
		return writeManifest(m, path, *version, inputs, stdout, stderr)
	case release != nil:
		if err := appendRelease(*releases, release, m, path, time.Now(), stderr); err != nil {
			fmt.Fprintf(stderr, "eif measure: %s: %v\n", *releases, err)
			return 1
		}
	case m.SigningCertificate != nil:
		if err := certificateUsable(m.SigningCertificate, time.Now()); err != nil {
			fmt.Fprintf(stderr, "eif measure: warning: %v\n", err)
		}
	}
	b, _ := json.MarshalIndent(newMeasureOutput(m), "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

// checkSignedBy requires the image to be signed with the certificate in
// the PEM file at path.
func checkSignedBy(m *eif.Measurements, path string) error {
	b, err := readSmallFile(path)
	if err != nil {
		return err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("%s is not a PEM certificate", path)
	}
	want, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	switch {
	case m.SigningCertificate == nil:
		return errors.New("the image is not signed")
	case !m.SigningCertificate.Equal(want):
		return fmt.Errorf("the image is signed with another certificate (%s), not %s", m.SigningCertificate.Subject, path)
	}
	return nil
}

// releaseFlags reads the flags of a release to append; the PCRs and the
// EIF's digest come from the image.
func releaseFlags(version, notBefore, notAfter, match string) (*attestation.Release, error) {
	r := &attestation.Release{Version: version, PCRs: map[int][]byte{}}
	if version == "" {
		return nil, errors.New("--releases needs --version")
	}
	if notBefore == "" {
		return nil, errors.New("--releases needs --not-before (RFC 3339: when clients start accepting the release)")
	}
	var err error
	if r.NotBefore, err = time.Parse(time.RFC3339, notBefore); err != nil {
		return nil, fmt.Errorf("--not-before: %v", err)
	}
	if notAfter != "" {
		if r.NotAfter, err = time.Parse(time.RFC3339, notAfter); err != nil {
			return nil, fmt.Errorf("--not-after: %v", err)
		}
		if !r.NotAfter.After(r.NotBefore) {
			return nil, errors.New("--not-after must be after --not-before")
		}
	}
	if match == "" {
		match = "pcr0,pcr1,pcr2"
	}
	for _, name := range strings.Split(match, ",") {
		n, ok := strings.CutPrefix(strings.TrimSpace(name), "pcr")
		i, err := strconv.Atoi(n)
		if !ok || err != nil || !slices.Contains([]int{0, 1, 2, 8}, i) || slices.Contains(r.Match, i) || n != strconv.Itoa(i) {
			return nil, fmt.Errorf("--match: %q: want distinct pcr0, pcr1, pcr2, pcr8, comma-separated", name)
		}
		r.Match = append(r.Match, i)
	}
	slices.Sort(r.Match)
	return r, nil
}

// appendRelease adds the image as release r to the releases file at path,
// strictly read, and replaces the file atomically.
func appendRelease(path string, r *attestation.Release, m *eif.Measurements, eifPath string, now time.Time, stderr io.Writer) error {
	rs := &attestation.Releases{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(stderr, "eif measure: %s does not exist: creating it\n", path)
	case err != nil:
		return err
	default:
		if rs, err = attestation.ParseReleases(b); err != nil {
			return err
		}
	}
	for _, old := range rs.Releases {
		if old.Version == r.Version {
			return fmt.Errorf("version %q is already released (a release is never changed: give the image a new version)", r.Version)
		}
	}
	r.PCRs[0], r.PCRs[1], r.PCRs[2] = m.PCR0, m.PCR1, m.PCR2
	if m.PCR8 != nil {
		r.PCRs[8] = m.PCR8
		if err := certificateUsable(m.SigningCertificate, now); err != nil {
			return err
		}
		if r.NotAfter.IsZero() || r.NotAfter.After(m.SigningCertificate.NotAfter) {
			fmt.Fprintf(stderr, "eif measure: warning: the release outlives its signing certificate (until %s): no new enclave of it starts after that\n",
				m.SigningCertificate.NotAfter.UTC().Format(time.RFC3339))
		}
	} else if slices.Contains(r.Match, 8) {
		return errors.New("--match names pcr8 but the image is not signed")
	}
	sum, err := fileSHA256(eifPath)
	if err != nil {
		return err
	}
	if r.EIFSHA256, err = hex.DecodeString(sum); err != nil {
		return err
	}
	rs.Releases = append(rs.Releases, *r)
	out, err := rs.Marshal()
	if err != nil {
		return err
	}
	if _, err := attestation.ParseReleases(out); err != nil {
		return fmt.Errorf("the new file would not parse: %w", err)
	}
	if err := atomicfile.Write(path, out, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "eif measure: release %q appended to %s (%d releases)\n", r.Version, path, len(rs.Releases))
	return nil
}

func writeManifest(m *eif.Measurements, path, version string, inputs inputFlags, stdout, stderr io.Writer) int {
	sum, err := fileSHA256(path)
	if err != nil {
		fmt.Fprintf(stderr, "eif measure: %v\n", err)
		return 1
	}
	man := attestation.Manifest{Version: version, PCRs: map[int][]byte{0: m.PCR0, 1: m.PCR1, 2: m.PCR2}, Inputs: map[string][]byte{}}
	if m.PCR8 != nil {
		man.PCRs[8] = m.PCR8
	}
	if man.EIFSHA256, err = hex.DecodeString(sum); err != nil {
		fmt.Fprintf(stderr, "eif measure: %v\n", err)
		return 1
	}
	for name, p := range inputs {
		s, err := fileSHA256(p)
		if err != nil {
			fmt.Fprintf(stderr, "eif measure: input %s: %v\n", name, err)
			return 1
		}
		man.Inputs[name], _ = hex.DecodeString(s)
	}
	b, err := man.Marshal()
	if err != nil {
		fmt.Fprintf(stderr, "eif measure: %v\n", err)
		return 1
	}
	stdout.Write(b)
	return 0
}

// eifSign: signerctl eif sign IN.eif --cert CERT.pem --key KEY.pem --out OUT.eif
func eifSign(args []string, stdout, stderr io.Writer) int {
	cmd := command("eif sign")
	flags := cmd.Flags
	certPath := flags.String("cert", "", "the release signing certificate `PEM` (ECDSA P-384), embedded in the image; its hash is PCR8")
	keyPath := flags.String("key", "", "the certificate's private key, `PEM` (EC PRIVATE KEY or PKCS #8, unencrypted)")
	outPath := flags.String("out", "", "write the signed image to `FILE`, which must not exist")
	in, code, ok := cmd.ParseArg(args, stdout, stderr)
	if !ok {
		return code
	}
	if *certPath == "" || *keyPath == "" || *outPath == "" {
		return cmd.UsageError(stderr, "--cert, --key and --out are required")
	}
	fail := func(err error) int { return eifFail(stderr, "eif sign", err) }
	certPEM, err := readSmallFile(*certPath)
	if err != nil {
		return fail(fmt.Errorf("--cert: %w", err))
	}
	key, err := readSigningKey(*keyPath)
	if err != nil {
		return fail(fmt.Errorf("--key: %w", err))
	}
	if _, err := os.Lstat(*outPath); !errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Errorf("--out %s exists (or cannot be checked): refusing to replace it", *outPath))
	}
	src, err := os.Open(in)
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return fail(err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(*outPath), "."+filepath.Base(*outPath)+".*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name())
	m, err := eif.Sign(tmp, src, st.Size(), eif.Signer{Certificate: certPEM, Key: key, Rand: rand.Reader})
	if err == nil {
		err = certificateUsable(m.SigningCertificate, time.Now())
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	// Measure what was written, as a client would, before it is named.
	written, err := measureFile(tmp.Name())
	if err != nil {
		return fail(fmt.Errorf("the signed image does not measure: %w", err))
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), *outPath); err != nil {
		return fail(err)
	}
	b, _ := json.MarshalIndent(newMeasureOutput(written), "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("larger than %d bytes", maxPEMFile)
	}
	return b, nil
}

// readSigningKey reads an ECDSA private key from PEM: an EC PRIVATE KEY
// block (after the EC PARAMETERS block openssl ecparam -genkey writes) or a
// PKCS #8 PRIVATE KEY block. Errors never quote the file.
func readSigningKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := readSmallFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	errMalformed := errors.New("malformed key: want one unencrypted EC PRIVATE KEY or PRIVATE KEY PEM block")
	var key *ecdsa.PrivateKey
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case "EC PRIVATE KEY":
			if key != nil {
				return nil, errMalformed
			}
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			if key != nil {
				return nil, errMalformed
			}
			var k any
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
			if ec, ok := k.(*ecdsa.PrivateKey); ok {
				key = ec
			} else if err == nil {
				err = errMalformed
			}
		default:
			err = errMalformed
		}
		clear(block.Bytes)
		if err != nil {
			return nil, errMalformed
		}
	}
	if key == nil {
		return nil, errMalformed
	}
	return key, nil
}

func hexOrEmpty(b []byte) string {
	if b == nil {
		return ""
	}
	return hex.EncodeToString(b)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
