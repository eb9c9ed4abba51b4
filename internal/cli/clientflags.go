package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/internal/devpki"
)

// ClientFlags are the flags of every command that talks to the signer.
type ClientFlags struct {
	dev        string
	role       string
	parents    ParentFlags
	cert, key  string
	serverCA   string
	root       string
	pcrsFile   string
	releases   string
	pcrs       PCRFlags
	signerID   string
	allowDebug bool
	maxAge     time.Duration
	// Timeout is --timeout, the deadline for the whole command (not
	// registered with a prefix).
	Timeout time.Duration
	// Transport, if set, builds the HTTP transport from the TLS settings.
	Transport func(*tls.Config) http.RoundTripper
}

// Register registers the flags, with the development role "broker".
func (c *ClientFlags) Register(fs *flag.FlagSet) { c.RegisterAs(fs, "", "broker") }

// RegisterAs registers the flags with a name prefix ("from-" for the
// second enclave of keys sync) and a default development role.
func (c *ClientFlags) RegisterAs(fs *flag.FlagSet, prefix, role string) {
	c.pcrs = PCRFlags{}
	fs.StringVar(&c.dev, prefix+"dev", "", "development layout `DIR` (from make run): fills in every path below")
	fs.StringVar(&c.role, prefix+"role", role, "with --dev: which development client certificate `ROLE` to use (broker, worker, admin, peer)")
	c.parents = ParentFlags{}
	fs.Var(&c.parents, prefix+"parent", "parent base `URL`; repeat for each replica of a fleet, a DNS name with several addresses being a replica per address (default "+DefaultParent+")")
	fs.StringVar(&c.cert, prefix+"cert", "", "client certificate `FILE` (PEM)")
	fs.StringVar(&c.key, prefix+"key", "", "client key `FILE` (PEM)")
	fs.StringVar(&c.serverCA, prefix+"server-ca", "", "`FILE` (PEM) with the CA of the parent's TLS certificate")
	fs.StringVar(&c.root, prefix+"root", "", "attestation root `FILE` (PEM) instead of the AWS Nitro root (development)")
	fs.StringVar(&c.pcrsFile, prefix+"pcrs", "", "PCR manifest `FILE` (pcrs.json) to pin")
	fs.Var(c.pcrs, prefix+"pcr", "pin PCR N to HEX, `N=HEX` (repeatable)")
	fs.StringVar(&c.releases, prefix+"releases", "", "accept any release of the manifest `FILE` (releases.json) instead of --pcrs and --pcr")
	fs.StringVar(&c.signerID, prefix+"signer-id", "", "the signer_id `ID` to expect")
	fs.BoolVar(&c.allowDebug, prefix+"allow-debug", false, "accept a debug-mode enclave (never in production)")
	fs.DurationVar(&c.maxAge, prefix+"max-age", client.DefaultMaxAge, "oldest attestation document accepted")
	if prefix == "" {
		fs.DurationVar(&c.Timeout, "timeout", 15*time.Second, "deadline for the whole command")
	}
}

// applyDev fills unset paths from a development layout: pki/ and nsm/ under
// the directory, as make run creates them.
func (c *ClientFlags) applyDev() {
	if c.dev == "" {
		return
	}
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	pki, state := filepath.Join(c.dev, "pki"), filepath.Join(c.dev, "nsm")
	set(&c.cert, filepath.Join(pki, devpki.ClientCert(c.role)))
	set(&c.key, filepath.Join(pki, devpki.ClientKey(c.role)))
	set(&c.serverCA, filepath.Join(pki, devpki.ServerCAFile))
	set(&c.root, filepath.Join(state, "dev-root.pem"))
	if c.releases == "" && len(c.pcrs) == 0 {
		set(&c.pcrsFile, filepath.Join(state, "pcrs.json"))
	}
	set(&c.signerID, devpki.SignerID)
}

// Client builds a client from the flags.
func (c *ClientFlags) Client() (*client.Client, error) {
	c.applyDev()
	if c.cert == "" || c.key == "" || c.serverCA == "" || c.signerID == "" {
		return nil, errors.New("--cert, --key, --server-ca and --signer-id are required (or --dev DIR)")
	}
	cert, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(c.serverCA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s: no certificate", c.serverCA)
	}
	policy := attestation.Policy{PCRs: map[int][]byte{}, AllowDebug: c.allowDebug, MaxAge: c.maxAge}
	if c.root != "" {
		b, err := os.ReadFile(c.root)
		if err != nil {
			return nil, err
		}
		if policy.Roots, err = attestation.ParseRootsPEM(b); err != nil {
			return nil, err
		}
	}
	if c.releases != "" {
		if c.pcrsFile != "" || len(c.pcrs) > 0 {
			return nil, errors.New("--releases accepts the manifest's releases: give it without --pcrs and --pcr")
		}
		if policy.Allowed, err = ReadReleases(c.releases); err != nil {
			return nil, err
		}
	}
	if c.pcrsFile != "" {
		if err := ReadPCRManifest(c.pcrsFile, policy.PCRs); err != nil {
			return nil, err
		}
	}
	for i, v := range c.pcrs {
		policy.PCRs[i] = v
	}
	cfg := client.Config{
		Endpoints: c.parents.URLs(), Certificate: cert, ServerCAs: pool,
		Policy: policy, SignerID: c.signerID, Clock: time.Now,
	}
	if c.Transport != nil {
		cfg.Transport = c.Transport(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: []tls.Certificate{cert}})
	}
	return client.New(cfg)
}

// ReadReleases reads releases.json (attestation.ParseReleases) as the
// measurements a policy allows.
func ReadReleases(path string) ([]attestation.Measurement, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rs, err := attestation.ParseReleases(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rs.Releases) == 0 {
		return nil, fmt.Errorf("%s: no release: nothing would be accepted", path)
	}
	return rs.Measurements(), nil
}

// ReadPCRManifest pins the PCRs of a pcrs.json manifest
// (attestation.ParseManifest).
func ReadPCRManifest(path string, into map[int][]byte) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	m, err := attestation.ParseManifest(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for i, v := range m.PCRs {
		into[i] = v
	}
	return nil
}
