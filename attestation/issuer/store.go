package issuer

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/atomicfile"
)

// Files of a development root under its state directory.
const (
	RootCertFile = "dev-root.pem"
	rootKeyFile  = "dev-root.key"
)

// LoadOrCreateAuthority loads the development root kept under dir, or creates
// it there (key file mode 0600) if absent. It is created once and reused, so
// a verifier given dir/dev-root.pem keeps trusting every restart.
func LoadOrCreateAuthority(dir string, now time.Time) (*Authority, error) {
	a, err := loadAuthority(dir)
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	a, err = NewAuthority(now)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		return nil, err
	}
	// The key is written first: a root certificate without its key would be
	// loaded as a broken authority.
	if err := atomicfile.Write(filepath.Join(dir, rootKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, RootCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Root.Raw}), 0o644); err != nil {
		return nil, err
	}
	return a, nil
}

func loadAuthority(dir string) (*Authority, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, rootKeyFile))
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("development root in %s: not PEM", dir)
	}
	root, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("development root in %s: %w", dir, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("development root key in %s: malformed key", dir)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(root.PublicKey) {
		return nil, fmt.Errorf("development root key in %s does not match its certificate", dir)
	}
	return &Authority{Root: root, key: key}, nil
}
