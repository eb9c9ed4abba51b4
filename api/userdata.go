package api

// UserDataVersion is the version of the user_data schema.
const UserDataVersion = 1

// MaxUserData is the NSM's bound on user_data.
const MaxUserData = 512

// UserData is what the enclave binds into its attestation document's
// user_data, as a deterministic CBOR map (RFC 8949 §4.2.1):
//
//	{"v": 1, "x25519": h'…32 bytes…', "signer_id": "…",
//	 "config_sha256": h'…32 bytes…', "epoch": n}
//
// envelope.ParseUserData decodes it strictly.
type UserData struct {
	Version uint `cbor:"v"`
	// X25519 is the enclave's per-boot key for encryption to it
	// (SealImport, peer copies).
	X25519 []byte `cbor:"x25519"`
	// SignerID is the deployment's name, the aud of requests.
	SignerID string `cbor:"signer_id"`
	// ConfigSHA256 is SHA-256 of the enclave's configuration file.
	ConfigSHA256 []byte `cbor:"config_sha256"`
	// Epoch is the current K3 epoch; 0 when no keys are loaded.
	Epoch uint32 `cbor:"epoch"`
}

// KMSContextKey is the KMS encryption context key under which the enclave
// binds every data key to its signer id: a key policy can require
// kms:EncryptionContext:nitro-signer:signer_id, and a data key of one
// deployment does not decrypt as another's.
const KMSContextKey = "nitro-signer:signer_id"
