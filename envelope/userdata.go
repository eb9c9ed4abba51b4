package envelope

import (
	"errors"
	"fmt"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/internal/strictcbor"
)

// ErrUserData: user_data is not a valid signer user_data.
var ErrUserData = errors.New("envelope: invalid user_data")

var (
	detEnc    = strictcbor.Enc
	strictDec = strictcbor.Dec
)

// MarshalUserData encodes u deterministically.
func MarshalUserData(u *api.UserData) ([]byte, error) {
	if err := validateUserData(u); err != nil {
		return nil, err
	}
	b, err := detEnc.Marshal(u)
	if err != nil {
		return nil, err
	}
	if len(b) > api.MaxUserData {
		return nil, fmt.Errorf("%w: %d bytes", ErrUserData, len(b))
	}
	return b, nil
}

// ParseUserData decodes user_data strictly and insists on the deterministic
// encoding: re-encoding must give the same bytes.
func ParseUserData(b []byte) (*api.UserData, error) {
	if len(b) > api.MaxUserData {
		return nil, fmt.Errorf("%w: %d bytes", ErrUserData, len(b))
	}
	var u api.UserData
	if err := strictDec.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUserData, err)
	}
	if err := validateUserData(&u); err != nil {
		return nil, err
	}
	again, err := detEnc.Marshal(&u)
	if err != nil || string(again) != string(b) {
		return nil, fmt.Errorf("%w: not deterministically encoded", ErrUserData)
	}
	return &u, nil
}

func validateUserData(u *api.UserData) error {
	switch {
	case u.Version != api.UserDataVersion:
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
