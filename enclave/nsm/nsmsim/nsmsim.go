//go:build nsmsim

package nsmsim

import (
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/attestation/issuer"
	"github.com/nitro-signer/nitro-signer/enclave/nsm"
)

// Options configure a Simulator.
type Options struct {
	// StateDir holds the development root (created once, then reused).
	StateDir string
	// Binary is the file measured into PCR0 and PCR2; empty means the
	// running executable.
	Binary string
	// Debug makes every PCR zero, as in a debug-mode enclave.
	Debug bool
	// Clock is the simulator's time source (required).
	Clock func() time.Time
}

// Simulator is a development NSM.
type Simulator struct {
	clock     func() time.Time
	authority *issuer.Authority
	pcrs      map[int][]byte

	mu     sync.Mutex
	issuer *issuer.Issuer
}

var _ nsm.Module = (*Simulator)(nil)

// renewBefore is how long before its leaf expires the simulator issues a new
// one, as the NSM rotates its certificate.
const renewBefore = time.Hour

// Open creates a simulator, creating the development root under
// opts.StateDir if it is absent.
func Open(opts Options) (*Simulator, error) {
	if opts.Clock == nil {
		return nil, fmt.Errorf("nsmsim: no clock")
	}
	if opts.StateDir == "" {
		return nil, fmt.Errorf("nsmsim: no state directory")
	}
	binary := opts.Binary
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("nsmsim: locating the running binary: %w", err)
		}
		binary = exe
	}
	pcrs, err := Measure(binary)
	if err != nil {
		return nil, err
	}
	if opts.Debug {
		for i := range pcrs {
			pcrs[i] = make([]byte, sha512.Size384)
		}
	}
	a, err := issuer.LoadOrCreateAuthority(opts.StateDir, opts.Clock())
	if err != nil {
		return nil, fmt.Errorf("nsmsim: %w", err)
	}
	return &Simulator{clock: opts.Clock, authority: a, pcrs: pcrs}, nil
}

// Measure computes the PCRs the simulator reports for a binary: PCR0 and
// PCR2 extend from zero with measurements of the file's bytes, PCR1 with a
// constant standing for the kernel, PCR3..15 stay zero.
func Measure(binary string) (map[int][]byte, error) {
	f, err := os.Open(binary)
	if err != nil {
		return nil, fmt.Errorf("nsmsim: measuring the binary: %w", err)
	}
	defer f.Close()
	h := sha512.New384()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("nsmsim: measuring the binary: %w", err)
	}
	image := h.Sum(nil)
	app := sha512.Sum384(append([]byte("nitro-signer simulated application:"), image...))
	kernel := sha512.Sum384([]byte("nitro-signer simulated kernel"))
	pcrs := make(map[int][]byte, 16)
	for i := range 16 {
		pcrs[i] = make([]byte, sha512.Size384)
	}
	pcrs[0] = extend(pcrs[0], image)
	pcrs[1] = extend(pcrs[1], kernel[:])
	pcrs[2] = extend(pcrs[2], app[:])
	return pcrs, nil
}

// extend is the PCR extension: SHA384(old || measurement).
func extend(old, measurement []byte) []byte {
	sum := sha512.Sum384(append(append([]byte{}, old...), measurement...))
	return sum[:]
}

// Attest issues a document in the real NSM format.
func (s *Simulator) Attest(req nsm.AttestRequest) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	now := s.clock()
	is, err := s.currentIssuer(now)
	if err != nil {
		return nil, err
	}
	return is.Issue(issuer.Payload{
		Timestamp: now,
		PCRs:      s.pcrs,
		PublicKey: req.PublicKey,
		UserData:  req.UserData,
		Nonce:     req.Nonce,
	})
}

func (s *Simulator) currentIssuer(now time.Time) (*issuer.Issuer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issuer == nil || now.Add(renewBefore).After(s.issuer.Leaf.NotAfter) {
		moduleID := ""
		if s.issuer != nil {
			moduleID = s.issuer.ModuleID
		}
		is, err := s.authority.NewIssuer(now, issuer.Options{ModuleID: moduleID})
		if err != nil {
			return nil, fmt.Errorf("nsmsim: %w", err)
		}
		s.issuer = is
	}
	return s.issuer, nil
}

// Read fills p from crypto/rand, standing in for the NSM's entropy.
func (s *Simulator) Read(p []byte) (int, error) { return rand.Read(p) }

// DescribePCR describes one of the simulated PCRs; PCR0..15 are locked as
// the NSM locks them at boot, the rest read as zero and unlocked.
func (s *Simulator) DescribePCR(index int) (nsm.PCR, error) {
	if err := nsm.ValidatePCRIndex(index); err != nil {
		return nsm.PCR{}, err
	}
	if v, ok := s.pcrs[index]; ok {
		return nsm.PCR{Value: append([]byte(nil), v...), Locked: true}, nil
	}
	return nsm.PCR{Value: make([]byte, sha512.Size384)}, nil
}

// Manifest is the pcrs.json manifest of the simulated image: its PCR0..2,
// for development clients to pin (attestation.ParseManifest reads it).
func (s *Simulator) Manifest() ([]byte, error) {
	m := attestation.Manifest{PCRs: map[int][]byte{}}
	for i := range 3 {
		v, err := s.DescribePCR(i)
		if err != nil {
			return nil, err
		}
		m.PCRs[i] = v.Value
	}
	return m.Marshal()
}

// WriteManifest writes Manifest to path.
func (s *Simulator) WriteManifest(path string) error {
	b, err := s.Manifest()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Close does nothing; the simulator holds no device.
func (s *Simulator) Close() error { return nil }

// Root is the development root the simulator's documents chain to.
func (s *Simulator) Root() *x509.Certificate { return s.authority.Root }
