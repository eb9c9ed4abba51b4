package api

import (
	"crypto/ecdh"
	"crypto/hpke"
	"fmt"
)

// SecretSize is the size of a master secret (one K3 epoch).
const SecretSize = 32

// The HPKE suite of imports (RFC 9180): DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, AES-256-GCM.
var (
	importKEM  = hpke.DHKEM(ecdh.X25519())
	importKDF  = hpke.HKDFSHA256()
	importAEAD = hpke.AES256GCM()
)

// ImportInfo is the HPKE info of an import to the signer named signerID:
// "nitro-signer keys/import v1", a zero byte, then signerID.
func ImportInfo(signerID string) []byte {
	return []byte("nitro-signer keys/import v1\x00" + signerID)
}

// SealImport encrypts a 32-byte master secret to an enclave's attested
// X25519 key (UserData.X25519) for the signer named signerID, as
// ImportKeyRequest.SealedSecret carries it: the HPKE encapsulated key,
// then the ciphertext. Call it only with a key from a document verified
// with a fresh nonce.
func SealImport(x25519 []byte, signerID string, secret []byte) ([]byte, error) {
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("api: a master secret is %d bytes, not %d", SecretSize, len(secret))
	}
	pub, err := importKEM.NewPublicKey(x25519)
	if err != nil {
		return nil, err
	}
	return hpke.Seal(pub, importKDF, importAEAD, ImportInfo(signerID), secret)
}
