package service

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/nitro-signer/nitro-signer/enclave/keyring"
)

// PersonalHash is the EIP-191 version 0x45 hash of msg:
// keccak256("\x19Ethereum Signed Message:\n" ‖ len(msg) ‖ msg).
func PersonalHash(msg []byte) []byte {
	prefix := "\x19Ethereum Signed Message:\n" + strconv.Itoa(len(msg))
	return crypto.Keccak256([]byte(prefix), msg)
}

// SignPersonal signs msg as EIP-191 personal_sign: RFC 6979 deterministic,
// low-S, 65 bytes r ‖ s ‖ v with v ∈ {0,1}, as 0x hex.
func SignPersonal(k *keyring.Key, msg []byte) (string, error) {
	return signHash(k, PersonalHash(msg))
}

func signHash(k *keyring.Key, hash []byte) (string, error) {
	sig, err := k.Sign(hash)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return "0x" + hex.EncodeToString(sig), nil
}
