package api

import "encoding/json"

// DeriveAddressRequest is v1/derive-address's params.
type DeriveAddressRequest struct {
	OperatorOmni string `json:"operator_omni"`
	// Epoch is the K3 epoch; absent means the current one.
	Epoch *uint32 `json:"k3_epoch,omitempty"`
}

// DeriveAddressResponse is v1/derive-address's result: the operator's
// wallet (docs/derivations.md).
type DeriveAddressResponse struct {
	Address string `json:"address"`
	// PublicKey is the uncompressed secp256k1 key, 0x04 ‖ X ‖ Y, as 0x hex.
	PublicKey string `json:"public_key"`
	Epoch     uint32 `json:"k3_epoch"`
}

// DeriveCredentialKEKRequest is v1/derive-cred-kek's params. The request
// envelope must carry a reply_key: the KEK leaves the enclave only
// encrypted to it.
type DeriveCredentialKEKRequest struct {
	OperatorOmni string `json:"operator_omni"`
	// Epoch is the K3 epoch, required (from 1): a KEK must stay the same
	// after a rotation.
	Epoch uint32 `json:"k3_epoch"`
}

// DeriveCredentialKEKResponse is v1/derive-cred-kek's result.
type DeriveCredentialKEKResponse struct {
	// KEK is a compact JWE (ECDH-ES, A256GCM) to the request's reply_key;
	// its plaintext is the 32 bytes of the KEK.
	KEK   string `json:"kek_jwe"`
	Epoch uint32 `json:"k3_epoch"`
}

// SignSIWERequest is v1/sign/siwe's params.
type SignSIWERequest struct {
	ActorOmni string `json:"actor_omni"`
	// SIWEMessage is a canonical EIP-4361 message naming the actor's
	// wallet (EIP-55) as its address.
	SIWEMessage string `json:"siwe_message"`
}

// SignSIWEResponse is v1/sign/siwe's result.
type SignSIWEResponse struct {
	Signature string `json:"signature"`
	Address   string `json:"address"`
	// MessageHash is the EIP-191 hash that was signed.
	MessageHash string `json:"message_hash"`
}

// SignTypedDataRequest is v1/sign/typed-data's params.
type SignTypedDataRequest struct {
	ActorOmni string `json:"actor_omni"`
	// TypedData is an eth_signTypedData_v4 document as a JSON object (not
	// a string holding one).
	TypedData json.RawMessage `json:"typed_data"`
}

// SignTypedDataResponse is v1/sign/typed-data's result.
type SignTypedDataResponse struct {
	Signature string `json:"signature"`
	Address   string `json:"address"`
	// Digest is keccak256(0x1901 ‖ DomainSeparator ‖ PrimaryTypeHash).
	Digest          string `json:"digest"`
	DomainSeparator string `json:"domain_separator"`
	// PrimaryTypeHash is hashStruct(primaryType, message).
	PrimaryTypeHash string `json:"primary_type_hash"`
}

// SignAuditRowRequest is v1/sign/audit-row's params.
type SignAuditRowRequest struct {
	ActorOmni string `json:"actor_omni"`
	// AuditRow is the row's deterministic CBOR as hex (0x optional).
	AuditRow string `json:"audit_row"`
}

// SignAuditRowResponse is v1/sign/audit-row's result.
type SignAuditRowResponse struct {
	// RowHash is keccak256 of the row's bytes.
	RowHash string `json:"row_hash"`
	// Signature is the EIP-191 personal_sign signature of the 32 bytes of
	// RowHash by the actor's wallet.
	Signature string `json:"signature"`
	Address   string `json:"address"`
}

// VerifyDeviceSignatureRequest is v1/verify/k10-sig's params (a device
// key's signature, K10 in the design): exactly one of DevicePubkey and
// DeviceKeyHash names the device.
type VerifyDeviceSignatureRequest struct {
	// DevicePubkey is the device's secp256k1 key, 33 or 65 bytes, hex.
	DevicePubkey string `json:"device_pubkey,omitempty"`
	// DeviceKeyHash is keccak256 of the device's 20-byte address, hex.
	DeviceKeyHash string `json:"device_key_hash,omitempty"`
	// Payload is the signed message's bytes, hex; the signature is EIP-191
	// personal_sign over them.
	Payload string `json:"payload"`
	// Sig is r ‖ s ‖ v, 65 bytes hex, v ∈ {0, 1, 27, 28}.
	Sig string `json:"sig"`
}

// VerifyDeviceSignatureResponse is v1/verify/k10-sig's result: Valid is
// false for a well-formed signature that does not match.
type VerifyDeviceSignatureResponse struct {
	Valid bool `json:"valid"`
	// Address is the address the signature recovers to ("" when it
	// recovers to none).
	Address string `json:"address"`
}

// VerifyWebAuthnRequest is v1/verify/k11-assertion's params (a WebAuthn
// assertion, K11 in the design). Byte strings are hex.
type VerifyWebAuthnRequest struct {
	// CredentialID is the credential's id as hex, at most 1023 bytes; it
	// is checked for form only (the caller looked the key up by it).
	CredentialID string `json:"cred_id"`
	// PublicKey is the credential's COSE_Key (ES256, P-256).
	PublicKey string `json:"public_key"`
	RPID      string `json:"rp_id"`
	// Payload is the challenge's bytes: clientDataJSON.challenge must be
	// their base64url.
	Payload           string `json:"payload"`
	AuthenticatorData string `json:"authenticator_data"`
	ClientDataJSON    string `json:"client_data_json"`
	// Signature is the ASN.1 DER ECDSA signature.
	Signature string `json:"signature"`
	// AllowedOrigins, if given, must contain clientDataJSON.origin.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// RequireUserVerification demands the UV flag; absent means true.
	RequireUserVerification *bool `json:"require_user_verification,omitempty"`
	// AllowCrossOrigin accepts assertions made in a cross-origin frame.
	AllowCrossOrigin bool `json:"allow_cross_origin,omitempty"`
}

// VerifyWebAuthnResponse is v1/verify/k11-assertion's result. When Valid
// is false, Reason names the rule the assertion broke (docs/protocol.md
// lists them).
type VerifyWebAuthnResponse struct {
	Valid        bool   `json:"valid"`
	Reason       string `json:"reason,omitempty"`
	SignCount    uint32 `json:"sign_count"`
	UserVerified bool   `json:"user_verified"`
}

// KeyStatusRequest is v1/keys/status's params: none, {}.
type KeyStatusRequest struct{}

// KeyStatusResponse is v1/keys/status's result.
type KeyStatusResponse struct {
	Ready      bool   `json:"ready"`
	Reason     string `json:"reason,omitempty"`
	Epoch      uint32 `json:"k3_epoch"`
	Generation uint64 `json:"generation"`
	Sequence   uint64 `json:"sequence"`
	Sealer     string `json:"sealer"`
	Fleet
}

// Fleet is how a replica stands against the state store it shares with
// the others: what it last found there. A replica converges by itself;
// these say how far it is from the newest.
type Fleet struct {
	// NewestSequence is the newest sequence the store listed.
	NewestSequence uint64 `json:"newest_sequence"`
	// SequencesBehind counts the stored sequences newer than the one in
	// use that this replica could not read yet (KMS refusing, say).
	SequencesBehind int `json:"sequences_behind"`
	// RefusedSequences counts newer sequences examined and refused: they
	// do not open, are not newer, or diverge from this keyring.
	RefusedSequences int `json:"refused_sequences"`
	// EpochsBehind is how many epochs past this keyring's newest a caller
	// has named (an authenticated caller's claim, not the store's: a
	// parent hiding the newest sequences shows here).
	EpochsBehind uint32 `json:"epochs_behind"`
}

// KeyringChange is the result of a method that changed the keyring (or
// found nothing to change).
type KeyringChange struct {
	Epoch      uint32 `json:"k3_epoch"`
	Generation uint64 `json:"generation"`
	Sequence   uint64 `json:"sequence"`
	// Unchanged is set when a peer copy found nothing newer.
	Unchanged bool `json:"unchanged,omitempty"`
}

// RotateKeysRequest is v1/keys/rotate's params: none, {}.
type RotateKeysRequest struct{}

// RotateKeysResponse is v1/keys/rotate's result.
type RotateKeysResponse = KeyringChange

// ImportKeyRequest is v1/keys/import's params.
type ImportKeyRequest struct {
	// SealedSecret is SealImport's output.
	SealedSecret []byte `json:"sealed_secret"`
}

// ImportKeyResponse is v1/keys/import's result.
type ImportKeyResponse = KeyringChange

// PeerChallengeRequest is v1/keys/peer-challenge's params: none, {}. The
// sender of a peer copy answers it.
type PeerChallengeRequest struct{}

// PeerChallengeResponse is v1/keys/peer-challenge's result.
type PeerChallengeResponse struct {
	Challenge []byte `json:"challenge"`
}

// PeerOfferRequest is v1/keys/peer-request's params: the receiver of a
// peer copy takes the sender's challenge and offers its attestation.
type PeerOfferRequest struct {
	Challenge []byte `json:"challenge"`
}

// PeerOfferResponse is v1/keys/peer-request's result.
type PeerOfferResponse struct {
	Document []byte `json:"document"`
	Nonce    []byte `json:"nonce"`
}

// PeerExportRequest is v1/keys/peer-export's params.
type PeerExportRequest struct {
	Challenge []byte `json:"challenge"`
	Document  []byte `json:"document"`
	Nonce     []byte `json:"nonce"`
}

// PeerExportResponse is v1/keys/peer-export's result.
type PeerExportResponse struct {
	Document []byte `json:"document"`
	Keyring  []byte `json:"keyring"`
	// Signature is the sender's response key's ECDSA signature (ASN.1)
	// over the SHA-256 of the peer-signed message (docs/protocol.md).
	Signature []byte `json:"signature"`
}

// PeerImportRequest is v1/keys/peer-import's params.
type PeerImportRequest struct {
	Nonce     []byte `json:"nonce"`
	Document  []byte `json:"document"`
	Keyring   []byte `json:"keyring"`
	Signature []byte `json:"signature"`
}

// PeerImportResponse is v1/keys/peer-import's result.
type PeerImportResponse = KeyringChange

// DevDeriveAddressRequest is dev/derive-address's params.
type DevDeriveAddressRequest struct {
	OmniAccount string `json:"omni_account"`
}

// DevDeriveAddressResponse is dev/derive-address's result.
type DevDeriveAddressResponse struct {
	Address    string `json:"address"`
	KeyVersion uint32 `json:"key_version"`
}

// DevSignMessageRequest is dev/sign-message's params.
type DevSignMessageRequest struct {
	OmniAccount string `json:"omni_account"`
	// MessageHex is the message bytes as hex, with or without 0x.
	MessageHex string `json:"message_hex"`
}

// DevSignMessageResponse is dev/sign-message's result.
type DevSignMessageResponse struct {
	// Signature is the EIP-191 personal_sign signature r ‖ s ‖ v (v ∈ {0,1}).
	Signature  string `json:"signature"`
	Address    string `json:"address"`
	KeyVersion uint32 `json:"key_version"`
}

// DevSignTypedDataRequest is dev/sign-typed-data's params.
type DevSignTypedDataRequest struct {
	OmniAccount string          `json:"omni_account"`
	TypedData   json.RawMessage `json:"typed_data"`
}

// DevSignTypedDataResponse is dev/sign-typed-data's result.
type DevSignTypedDataResponse struct {
	SignTypedDataResponse
	KeyVersion uint32 `json:"key_version"`
}

// DevDeriveDeviceRequest is dev/derive-device's params.
type DevDeriveDeviceRequest struct {
	ActorOmni string `json:"actor_omni"`
	// Label, if given, must be the device label of docs/derivations.md.
	Label string `json:"label,omitempty"`
}

// DevDeriveDeviceResponse is dev/derive-device's result.
type DevDeriveDeviceResponse struct {
	Address string `json:"address"`
	// DeviceKeyHash is keccak256 of the device address's 20 bytes.
	DeviceKeyHash string `json:"device_key_hash"`
	// PopSig is the device key's EIP-191 signature of the 32 bytes of
	// keccak256("agentkeys-agent-pop:" ‖ DeviceKeyHash as 0x hex).
	PopSig     string `json:"pop_sig"`
	KeyVersion uint32 `json:"key_version"`
}

// DevSignDeviceCapPopRequest is dev/sign-device-cap-pop's params.
type DevSignDeviceCapPopRequest struct {
	ActorOmni    string `json:"actor_omni"`
	OperatorOmni string `json:"operator_omni"`
	Service      string `json:"service"`
	Op           string `json:"op"`
	DataClass    string `json:"data_class"`
	ClientNonce  string `json:"client_nonce"`
	// ClientTS is the client's Unix time in seconds.
	ClientTS int64 `json:"client_ts"`
}

// DevSignDeviceCapPopResponse is dev/sign-device-cap-pop's result.
type DevSignDeviceCapPopResponse struct {
	Signature     string `json:"signature"`
	Address       string `json:"address"`
	DeviceKeyHash string `json:"device_key_hash"`
	KeyVersion    uint32 `json:"key_version"`
}
