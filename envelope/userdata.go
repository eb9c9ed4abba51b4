package envelope

import (
	"errors"
	"fmt"

	"github.com/nitro-signer/nitro-signer/internal/strictcbor"
)

// UserDataVersion is the version of the user_data schema.
const UserDataVersion = 1

// MaxUserData is the NSM's bound on user_data.
const MaxUserData = 512

// UserData is what the enclave binds into its attestation document's
// user_data, as a deterministic CBOR map (RFC 8949 §4.2.1):
//
//	{"v": 1, "x25519": h'…32 bytes…', "signer_id": "…",
//	 "config_sha256": h'…32 bytes…', "epoch": n}
type UserData struct {
	Version uint `cbor:"v"`
	// X25519 is the enclave's per-boot key for encryption to it.
	X25519 []byte `cbor:"x25519"`
	// SignerID is the deployment's name, the aud of requests.
	SignerID string `cbor:"signer_id"`
	// ConfigSHA256 is SHA-256 of the enclave's configuration file.
	ConfigSHA256 []byte `cbor:"config_sha256"`
	// Epoch is the current K3 epoch; 0 when no keys are loaded.
	Epoch uint32 `cbor:"epoch"`
}

// ErrUserData: user_data is not a valid signer user_data.
var ErrUserData = errors.New("envelope: invalid user_data")

var (
	detEnc    = strictcbor.Enc
	strictDec = strictcbor.Dec
)

// Marshal encodes u deterministically.
func (u *UserData) Marshal() ([]byte, error) {
	if err := u.validate(); err != nil {
		return nil, err
	}
	b, err := detEnc.Marshal(u)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxUserData {
		return nil, fmt.Errorf("%w: %d bytes", ErrUserData, len(b))
	}
	return b, nil
}

// ParseUserData decodes user_data strictly and insists on the deterministic
// encoding: re-encoding must give the same bytes.
func ParseUserData(b []byte) (*UserData, error) {
	if len(b) > MaxUserData {
		return nil, fmt.Errorf("%w: %d bytes", ErrUserData, len(b))
	}
	var u UserData
	if err := strictDec.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUserData, err)
	}
	if err := u.validate(); err != nil {
		return nil, err
	}
	again, err := detEnc.Marshal(&u)
	if err != nil || string(again) != string(b) {
		return nil, fmt.Errorf("%w: not deterministically encoded", ErrUserData)
	}
	return &u, nil
}

func (u *UserData) validate() error {
	switch {
	case u.Version != UserDataVersion:
		return fmt.Errorf("%w: version %d", ErrUserData, u.Version)
	case len(u.X25519) != 32:
		return fmt.Errorf("%w: x25519 key of %d bytes", ErrUserData, len(u.X25519))
	case u.SignerID == "" || len(u.SignerID) > 64:
		return fmt.Errorf("%w: signer_id", ErrUserData)
	case len(u.ConfigSHA256) != 32:
		return fmt.Errorf("%w: config_sha256 of %d bytes", ErrUserData, len(u.ConfigSHA256))
	}
	return nil
}
