package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"hash/crc32"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
	"github.com/nitro-signer/nitro-signer/eif"
	"github.com/nitro-signer/nitro-signer/internal/cli"
)

func TestEIFMeasureAndManifestPins(t *testing.T) {
	dir := t.TempDir()
	var img bytes.Buffer
	err := eif.Write(&img, eif.Image{Sections: []eif.Section{
		{Type: eif.SectionKernel, Data: []byte("kernel")}, {Type: eif.SectionCmdline, Data: []byte("console=ttyS0")},
		{Type: eif.SectionRamdisk, Data: []byte("init")}, {Type: eif.SectionRamdisk, Data: []byte("app")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "image.eif")
	os.WriteFile(path, img.Bytes(), 0o644)
	cfg := filepath.Join(dir, "enclave.json")
	os.WriteFile(cfg, []byte("{}"), 0o644)
	want, _ := eif.Measure(bytes.NewReader(img.Bytes()), int64(img.Len()))

	var stdout, stderr bytes.Buffer
	if code := run([]string{"eif", "measure", path}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var got map[string]string
	json.Unmarshal(stdout.Bytes(), &got)
	if got["PCR0"] != want.PCRHex()["pcr0"] || got["PCR2"] != want.PCRHex()["pcr2"] || got["HashAlgorithm"] != "SHA384" {
		t.Fatalf("measure printed %v", got)
	}
	stdout.Reset()
	if code := run([]string{"eif", "measure", path, "--manifest", "--version", "v1.2.3", "--input", "config=" + cfg}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	m, err := attestation.ParseManifest(stdout.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "v1.2.3" || hex.EncodeToString(m.PCRs[1]) != want.PCRHex()["pcr1"] || len(m.EIFSHA256) != 32 || len(m.Inputs["config"]) != 32 {
		t.Fatalf("manifest %+v", m)
	}
	pins := map[int][]byte{}
	manifestPath := filepath.Join(dir, "pcrs.json")
	os.WriteFile(manifestPath, stdout.Bytes(), 0o644)
	if err := cli.ReadPCRManifest(manifestPath, pins); err != nil || len(pins) != 3 {
		t.Fatalf("ReadPCRManifest: %v, %d pins", err, len(pins))
	}

	// A corrupt image is refused with one line.
	bad := bytes.Clone(img.Bytes())
	bad[len(bad)-1] ^= 1
	os.WriteFile(path, bad, 0o644)
	stderr.Reset()
	if code := run([]string{"eif", "measure", path}, nil, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "CRC") {
		t.Fatalf("corrupt image: exit %d: %s", code, stderr.String())
	}
}

func TestAttestVerifyPinsFromManifest(t *testing.T) {
	var meta struct {
		Payload struct {
			PCR0, PCR1, PCR2 string
		} `json:"payload"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "attestation", "evervault-2023-01-18-nondebug-pcr8.json"), &meta); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(testvectors.Dir(t), "attestation", "evervault-2023-01-18-nondebug-pcr8.cbor")
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		pcr0 string
		code int
	}{"matching": {meta.Payload.PCR0, 0}, "bad_other_image": {strings.Repeat("ab", 48), 1}} {
		t.Run(name, func(t *testing.T) {
			pins := map[int][]byte{}
			for i, h := range []string{tc.pcr0, meta.Payload.PCR1, meta.Payload.PCR2} {
				var err error
				if pins[i], err = hex.DecodeString(h); err != nil {
					t.Fatal(err)
				}
			}
			b, err := (&attestation.Manifest{Version: "x", PCRs: pins}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, name+".json")
			os.WriteFile(p, b, 0o644)
			var stdout, stderr bytes.Buffer
			code := run([]string{"attest", "verify", "--doc", doc, "--at", "2023-01-18T13:07:19Z", "--pcrs", p}, nil, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr.String())
			}
			if tc.code == 1 && !strings.Contains(stderr.String(), "rule=pcr_mismatch") {
				t.Fatalf("stderr %q", stderr.String())
			}
		})
	}
}

// eifFixture is the eif package's testdata: an openssl-made release key
// and certificate, and signed.json's PCR8 for that certificate.
func eifFixture(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join("..", "..", "..", "eif", "testdata", name)
}

func unsignedImage(t *testing.T, dir, name, app string) string {
	t.Helper()
	var img bytes.Buffer
	err := eif.Write(&img, eif.Image{Sections: []eif.Section{
		{Type: eif.SectionKernel, Data: []byte("kernel")}, {Type: eif.SectionCmdline, Data: []byte("console=ttyS0")},
		{Type: eif.SectionRamdisk, Data: []byte("init")}, {Type: eif.SectionRamdisk, Data: []byte(app)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testCertificate writes a P-384 key (PKCS #8) and a certificate valid
// from notBefore to notAfter.
func testCertificate(t *testing.T, dir, name string, notBefore, notAfter time.Time) (certPath, keyPath string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	certPath, keyPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600)
	return certPath, keyPath
}

func TestEIFSignAndMeasure(t *testing.T) {
	dir := t.TempDir()
	in := unsignedImage(t, dir, "image.eif", "app")
	var fixture map[string]string
	j, _ := os.ReadFile(eifFixture(t, "signed.json"))
	json.Unmarshal(j, &fixture)
	unsigned, _ := measureFile(in)

	// Signed with openssl's key file (EC PARAMETERS + EC PRIVATE KEY):
	// PCR8 is the one the independent fixture gives for that certificate.
	out := filepath.Join(dir, "signed.eif")
	var stdout, stderr bytes.Buffer
	code := run([]string{"eif", "sign", in, "--cert", eifFixture(t, "release-cert.pem"), "--key", eifFixture(t, "release-key.pem"), "--out", out}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("eif sign: exit %d: %s", code, stderr.String())
	}
	var signed measureOutput
	if err := json.Unmarshal(stdout.Bytes(), &signed); err != nil {
		t.Fatal(err)
	}
	if signed.PCR8 != fixture["pcr8"] || signed.PCR0 != hex.EncodeToString(unsigned.PCR0) || signed.Signature == nil || !strings.HasPrefix(signed.Signature.Check, "verified") {
		t.Fatalf("eif sign printed %+v", signed)
	}
	stdout.Reset()
	if code := run([]string{"eif", "measure", out}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("eif measure: exit %d: %s", code, stderr.String())
	}
	var measured measureOutput
	json.Unmarshal(stdout.Bytes(), &measured)
	if measured.PCR8 != fixture["pcr8"] || measured.Signature == nil || !strings.Contains(measured.Signature.Subject, "nitro-signer test release") {
		t.Fatalf("eif measure printed %s", stdout.String())
	}

	// --signed-by holds the image to one certificate.
	for _, tc := range []struct {
		name, image, cert string
		code              int
	}{
		{"signed_by_it", out, eifFixture(t, "release-cert.pem"), 0},
		{"bad_unsigned", in, eifFixture(t, "release-cert.pem"), 1},
		{"bad_other_certificate", out, otherCertificate(t, dir), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run([]string{"eif", "measure", tc.image, "--signed-by", tc.cert}, nil, io.Discard, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr.String())
			}
		})
	}

	// A section moved onto another image is refused, with its rule.
	other := unsignedImage(t, dir, "other.eif", "another app")
	b, _ := os.ReadFile(out)
	o, _ := os.ReadFile(other)
	moved := transplant(t, o, b)
	os.WriteFile(filepath.Join(dir, "moved.eif"), moved, 0o644)
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"eif", "measure", filepath.Join(dir, "moved.eif")}, nil, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "rule=eif_signed_pcr0") || stdout.Len() != 0 {
		t.Fatalf("moved signature: exit %d: %q %q", code, stdout.String(), stderr.String())
	}

	// An expired certificate still measures, with a warning.
	expiredCert, expiredKey := testCertificate(t, dir, "expired", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	expired := signWithPackage(t, in, filepath.Join(dir, "expired.eif"), expiredCert, expiredKey)
	stderr.Reset()
	if code := run([]string{"eif", "measure", expired}, nil, io.Discard, &stderr); code != 0 || !strings.Contains(stderr.String(), "warning") {
		t.Fatalf("expired certificate: exit %d: %s", code, stderr.String())
	}
}

func otherCertificate(t *testing.T, dir string) string {
	c, _ := testCertificate(t, dir, "other-release", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	return c
}

// signWithPackage signs with eif.Sign directly, which does not look at
// the clock (eif sign refuses an expired certificate).
func signWithPackage(t *testing.T, in, out, certPath, keyPath string) string {
	t.Helper()
	certPEM, _ := os.ReadFile(certPath)
	key, err := readSigningKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(in)
	var buf bytes.Buffer
	if _, err := eif.Sign(&buf, bytes.NewReader(b), int64(len(b)), eif.Signer{Certificate: certPEM, Key: key, Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(out, buf.Bytes(), 0o644)
	return out
}

// transplant appends signed's last section (its signature) to unsigned.
func transplant(t *testing.T, unsigned, signed []byte) []byte {
	t.Helper()
	be := binary.BigEndian
	n := int(be.Uint16(signed[26:]))
	off := be.Uint64(signed[28+8*(n-1):])
	section := signed[off:]
	out := append(bytes.Clone(unsigned), section...)
	k := int(be.Uint16(out[26:]))
	be.PutUint16(out[26:], uint16(k+1))
	be.PutUint64(out[28+8*k:], uint64(len(unsigned)))
	be.PutUint64(out[28+8*eif.MaxSections+8*k:], uint64(len(section)-eif.SectionHeaderSize))
	be.PutUint32(out[eif.HeaderSize-4:], crc32.ChecksumIEEE(append(bytes.Clone(out[:eif.HeaderSize-4]), out[eif.HeaderSize:]...)))
	return out
}

func TestEIFSignRefuses(t *testing.T) {
	dir := t.TempDir()
	in := unsignedImage(t, dir, "image.eif", "app")
	cert, key := testCertificate(t, dir, "release", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	_, otherKey := testCertificate(t, dir, "other", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	expiredCert, expiredKey := testCertificate(t, dir, "expired", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	secret := "-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0IGtleSBieXRlcw==\n-----END EC PRIVATE KEY-----\n"
	badKey := filepath.Join(dir, "bad-key.pem")
	os.WriteFile(badKey, []byte(secret), 0o600)
	exists := filepath.Join(dir, "exists.eif")
	os.WriteFile(exists, []byte("keep me"), 0o644)
	signed := signWithPackage(t, in, filepath.Join(dir, "signed.eif"), cert, key)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad_missing_flags", []string{in, "--cert", cert}, 2, "required"},
		{"bad_key_of_another_certificate", []string{in, "--cert", cert, "--key", otherKey, "--out", filepath.Join(dir, "a.eif")}, 1, "not the signing certificate's"},
		{"bad_malformed_key", []string{in, "--cert", cert, "--key", badKey, "--out", filepath.Join(dir, "b.eif")}, 1, "malformed key"},
		{"bad_out_exists", []string{in, "--cert", cert, "--key", key, "--out", exists}, 1, "refusing to replace"},
		{"bad_expired_certificate", []string{in, "--cert", expiredCert, "--key", expiredKey, "--out", filepath.Join(dir, "c.eif")}, 1, "not now"},
		{"bad_already_signed", []string{signed, "--cert", cert, "--key", key, "--out", filepath.Join(dir, "d.eif")}, 1, "rule=eif_signed"},
		{"bad_certificate_is_the_key", []string{in, "--cert", key, "--key", key, "--out", filepath.Join(dir, "e.eif")}, 1, "rule=eif_signing_certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"eif", "sign"}, tt.args...), nil, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) || stdout.Len() != 0 {
				t.Fatalf("exit %d, want %d with %q: %q", code, tt.code, tt.want, stderr.String())
			}
			if strings.Contains(stderr.String(), "c2VjcmV0") {
				t.Fatal("the key file is quoted")
			}
		})
	}
	if b, _ := os.ReadFile(exists); string(b) != "keep me" {
		t.Fatal("an existing --out was replaced")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
}

func TestEIFMeasureAppendsReleases(t *testing.T) {
	dir := t.TempDir()
	v1 := unsignedImage(t, dir, "v1.eif", "app one")
	cert, key := testCertificate(t, dir, "release", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	v2 := signWithPackage(t, unsignedImage(t, dir, "v2-unsigned.eif", "app two"), filepath.Join(dir, "v2.eif"), cert, key)
	m1, _ := measureFile(v1)
	m2, _ := measureFile(v2)
	releases := filepath.Join(dir, "releases.json")
	appendArgs := func(img, version string, extra ...string) []string {
		return append([]string{"eif", "measure", img, "--releases", releases, "--version", version, "--not-before", "2026-01-01T00:00:00Z"}, extra...)
	}
	var stdout, stderr bytes.Buffer
	if code := run(appendArgs(v1, "v1", "--not-after", "2027-01-01T00:00:00Z"), nil, &stdout, &stderr); code != 0 {
		t.Fatalf("first release: exit %d: %s", code, stderr.String())
	}
	if code := run(appendArgs(v2, "v2", "--match", "pcr8"), nil, &stdout, &stderr); code != 0 {
		t.Fatalf("second release: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "outlives its signing certificate") {
		t.Fatalf("no warning for a release without end signed by a certificate that ends: %s", stderr.String())
	}
	read := func() *attestation.Releases {
		b, err := os.ReadFile(releases)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := attestation.ParseReleases(b)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	rs := read()
	if len(rs.Releases) != 2 {
		t.Fatalf("%d releases", len(rs.Releases))
	}
	sum1, _ := fileSHA256(v1)
	r1, r2 := rs.Releases[0], rs.Releases[1]
	if r1.Version != "v1" || !bytes.Equal(r1.PCRs[0], m1.PCR0) || !bytes.Equal(r1.PCRs[2], m1.PCR2) || r1.PCRs[8] != nil ||
		hex.EncodeToString(r1.EIFSHA256) != sum1 || !r1.NotAfter.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("release v1: %+v", r1)
	}
	if got := r1.Measurement().PCRs; len(got) != 3 {
		t.Fatalf("v1 pins %v, want PCR0, 1 and 2", got)
	}
	if got := r2.Measurement().PCRs; len(got) != 1 || !bytes.Equal(got[8], m2.PCR8) || !bytes.Equal(r2.PCRs[0], m2.PCR0) {
		t.Fatalf("v2 pins %v, want PCR8 alone (PCR0 recorded)", got)
	}

	before, _ := os.ReadFile(releases)
	os.WriteFile(filepath.Join(dir, "corrupt.json"), []byte(`{"releases": [{"version": "x"}]}`), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad_duplicate_version", appendArgs(v1, "v1"), 1, "already released"},
		{"bad_match_pcr8_unsigned", appendArgs(v1, "v3", "--match", "pcr0,pcr8"), 1, "not signed"},
		{"bad_match_name", appendArgs(v1, "v3", "--match", "pcr0,pcr00"), 2, "--match"},
		{"bad_match_twice", appendArgs(v1, "v3", "--match", "pcr0,pcr0"), 2, "--match"},
		{"bad_no_not_before", []string{"eif", "measure", v1, "--releases", releases, "--version", "v3"}, 2, "--not-before"},
		{"bad_no_version", []string{"eif", "measure", v1, "--releases", releases, "--not-before", "2026-01-01T00:00:00Z"}, 2, "--version"},
		{"bad_not_after_before_not_before", appendArgs(v1, "v3", "--not-after", "2025-01-01T00:00:00Z"), 2, "after"},
		{"bad_time", appendArgs(v1, "v3", "--not-after", "tomorrow"), 2, "--not-after"},
		{"bad_manifest_and_releases", append(appendArgs(v1, "v3"), "--manifest"), 2, "exclude"},
		{"bad_match_without_releases", []string{"eif", "measure", v1, "--match", "pcr8"}, 2, "--releases"},
		{"bad_corrupt_releases_file", []string{"eif", "measure", v1, "--releases", filepath.Join(dir, "corrupt.json"), "--version", "v3", "--not-before", "2026-01-01T00:00:00Z"}, 1, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, nil, &stdout, &stderr); code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, want %d with %q: %s", code, tt.code, tt.want, stderr.String())
			}
		})
	}
	if after, _ := os.ReadFile(releases); !bytes.Equal(after, before) {
		t.Fatal("a refused append changed releases.json")
	}

	// An image signed with an expired certificate cannot be released: it
	// would not start.
	expCert, expKey := testCertificate(t, dir, "expired", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	expired := signWithPackage(t, v1, filepath.Join(dir, "expired.eif"), expCert, expKey)
	stderr.Reset()
	if code := run(appendArgs(expired, "v4", "--match", "pcr8"), nil, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "not now") {
		t.Fatalf("expired certificate: exit %d: %s", code, stderr.String())
	}
	if after, _ := os.ReadFile(releases); !bytes.Equal(after, before) {
		t.Fatal("a refused append changed releases.json")
	}
}
