package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
