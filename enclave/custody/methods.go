package custody

import (
	"context"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"strings"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

// WaitsOnIO reports whether route is a key method. A key method may wait on
// the sealer (a KMS round trip) and the parent's store, so the channel runs
// it outside the workers that only compute.
func WaitsOnIO(route string) bool { return strings.HasPrefix(route, "v1/keys/") }

// Methods returns the key methods by route, with the service's handler
// shape.
func (c *Custody) Methods() map[string]service.Handler {
	return service.Table(
		service.Bind(api.KeyStatus, c.status),
		service.Bind(api.RotateKeys, c.rotate),
		service.Bind(api.ImportKey, c.importSecret),
		service.Bind(api.PeerChallenge, c.peerChallenge),
		service.Bind(api.PeerOffer, c.peerOffer),
		service.Bind(api.PeerExport, c.peerExport),
		service.Bind(api.PeerImport, c.peerImport),
	)
}

func (c *Custody) status(_ context.Context, _ *service.Request, p *api.KeyStatusRequest) (*api.KeyStatusResponse, error) {
	s := c.Status()
	return &s, nil
}

func (c *Custody) result() *api.KeyringChange {
	return &api.KeyringChange{Epoch: c.o.Keys.Current(), Generation: c.gen, Sequence: c.seq}
}

// rotate adds an epoch from the enclave's own randomness.
func (c *Custody) rotate(ctx context.Context, _ *service.Request, p *api.RotateKeysRequest) (*api.RotateKeysResponse, error) {
	if err := c.lockMethod(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	current := c.o.Keys.Snapshot()
	if len(current) == 0 || c.gen == 0 {
		return nil, api.Errorf(api.CodeSignerDisabled, "no sealed keyring loaded: nothing to rotate")
	}
	if len(current) >= keyring.MaxEpoch {
		return nil, api.Errorf(api.CodeBadRequest, "the keyring already holds %d epochs", keyring.MaxEpoch)
	}
	s, err := c.newSecret()
	if err != nil {
		return nil, err
	}
	if err := c.commit(ctx, &seal.Keyring{Generation: c.gen + 1, Epochs: append(current, s)}); err != nil {
		return nil, err
	}
	return c.result(), nil
}

// newSecret draws 32 bytes from the NSM and 32 from crypto/rand and hashes
// them together, so the epoch is unpredictable if either source is good.
func (c *Custody) newSecret() (*keyring.Secret, error) {
	var buf [64]byte
	defer clear(buf[:])
	if c.o.Random == nil {
		return nil, api.Errorf(api.CodeInternal, "no NSM randomness")
	}
	if _, err := io.ReadFull(c.o.Random, buf[:32]); err != nil {
		return nil, api.Errorf(api.CodeInternal, "NSM randomness failed")
	}
	rand.Read(buf[32:])
	h := sha256.New()
	h.Write([]byte("nitro-signer k3 epoch v1\x00"))
	h.Write(buf[:])
	sum := h.Sum(nil)
	defer clear(sum)
	return keyring.NewSecret(sum)
}

// HPKE suite for imports and peer copies: DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, AES-256-GCM.
var (
	hpkeKEM  = hpke.DHKEM(ecdhX25519)
	hpkeKDF  = hpke.HKDFSHA256()
	hpkeAEAD = hpke.AES256GCM()
)

func (c *Custody) importSecret(ctx context.Context, _ *service.Request, p *api.ImportKeyRequest) (*api.ImportKeyResponse, error) {
	priv, err := hpke.NewDHKEMPrivateKey(c.o.X25519)
	if err != nil {
		return nil, err
	}
	plain, err := hpke.Open(priv, hpkeKDF, hpkeAEAD, api.ImportInfo(c.o.SignerID), p.SealedSecret)
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "sealed_secret does not open with this enclave's key")
	}
	defer clear(plain)
	s, err := keyring.NewSecret(plain)
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "the imported secret is not %d bytes", keyring.SecretSize)
	}
	return c.Import(ctx, s)
}

// Import makes s epoch 1 of an empty keyring, sealed and stored first. It
// is refused when the keyring holds keys or the store holds any sealed
// keyring, readable or not: an import never starts a second lineage.
func (c *Custody) Import(ctx context.Context, s *keyring.Secret) (*api.KeyringChange, error) {
	if err := c.lockMethod(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	if c.o.Keys.Current() != 0 {
		return nil, api.Errorf(api.CodeKeyringNotEmpty, "the keyring already holds %d epochs", c.o.Keys.Current())
	}
	if c.o.Store == nil || c.o.Sealer == nil {
		return nil, api.Errorf(api.CodeStateUnavailable, "no state store or sealer configured: an import could not be sealed")
	}
	seqs, _, err := c.o.Store.List(ctx, 0)
	if err != nil {
		return nil, api.Errorf(api.CodeStateUnavailable, "listing the state store failed")
	}
	if len(seqs) > 0 {
		return nil, api.Errorf(api.CodeKeyringNotEmpty,
			"the state store already holds sealed keyrings (the oldest is sequence %d): unseal them or copy from a peer", seqs[0])
	}
	if err := c.commit(ctx, &seal.Keyring{Generation: 1, Epochs: []*keyring.Secret{s}}); err != nil {
		return nil, err
	}
	c.log.Info("master secret imported as epoch 1")
	return c.result(), nil
}

// encodeKeyring is a peer copy's plaintext: generation (8 bytes, big
// endian) ‖ the epochs' secrets.
func encodeKeyring(gen uint64, epochs []*keyring.Secret) []byte {
	return keyring.AppendSecrets(binary.BigEndian.AppendUint64(nil, gen), epochs)
}

var errKeyringEncoding = errors.New("malformed keyring")

func decodeKeyring(b []byte) (uint64, []*keyring.Secret, error) {
	if len(b) < 8 || binary.BigEndian.Uint64(b) == 0 {
		return 0, nil, errKeyringEncoding
	}
	epochs, err := keyring.SplitSecrets(b[8:])
	if err != nil {
		return 0, nil, errKeyringEncoding
	}
	return binary.BigEndian.Uint64(b), epochs, nil
}
