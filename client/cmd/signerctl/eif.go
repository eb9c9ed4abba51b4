package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/eif"
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

// eifMeasure: signerctl eif measure FILE.eif [--manifest --version V --input NAME=FILE...]
func eifMeasure(args []string, stdout, stderr io.Writer) int {
	cmd := command("eif measure")
	fs := cmd.Flags
	manifest := fs.Bool("manifest", false, "print a pcrs.json manifest instead of the measurements")
	version := fs.String("version", "", "with --manifest: the image `VERSION`")
	inputs := inputFlags{}
	fs.Var(inputs, "input", "with --manifest: a build input `NAME=FILE` whose SHA-256 is recorded (repeatable)")
	path, code, ok := cmd.ParseArg(args, stdout, stderr)
	if !ok {
		return code
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "eif measure: %v\n", err)
		return 1
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fmt.Fprintf(stderr, "eif measure: %v\n", err)
		return 1
	}
	m, err := eif.Measure(f, st.Size())
	if err != nil {
		fmt.Fprintf(stderr, "eif measure: %v\n", err)
		return 1
	}
	var out any = struct {
		HashAlgorithm string `json:"HashAlgorithm"`
		PCR0          string `json:"PCR0"`
		PCR1          string `json:"PCR1"`
		PCR2          string `json:"PCR2"`
		PCR8          string `json:"PCR8,omitempty"`
	}{"SHA384", hexOrEmpty(m.PCR0), hexOrEmpty(m.PCR1), hexOrEmpty(m.PCR2), hexOrEmpty(m.PCR8)}
	if *manifest {
		sum, err := fileSHA256(path)
		if err != nil {
			fmt.Fprintf(stderr, "eif measure: %v\n", err)
			return 1
		}
		man := attestation.Manifest{Version: *version, PCRs: map[int][]byte{0: m.PCR0, 1: m.PCR1, 2: m.PCR2}, Inputs: map[string][]byte{}}
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
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
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
