package api

import (
	"slices"
	"strings"
)

// Method binds a route to the type of its params, P, and of its result, R.
// Both sides use the same value: the client sends a P to Route and decodes
// an R; the enclave decodes a P and answers an R.
type Method[P, R any] struct {
	// Route is the method's name on the wire: the path after "/" and the
	// envelope's "method".
	Route string
	// ChangesState marks a method whose second execution is not the
	// first's: a client attests right before signing one and never signs
	// it twice (docs/protocol.md, "Retries").
	ChangesState bool
	// ReplyKey marks a method whose request envelope must carry a
	// reply_key, the caller's key the answer's secret is encrypted to.
	ReplyKey bool
}

// Info describes a method without its types.
func (m Method[P, R]) Info() MethodInfo {
	return MethodInfo(m)
}

// MethodInfo is what a route says about itself.
type MethodInfo struct {
	Route        string
	ChangesState bool
	ReplyKey     bool
}

// The typed surface (v1).
var (
	DeriveAddress         = Method[DeriveAddressRequest, DeriveAddressResponse]{Route: "v1/derive-address"}
	DeriveCredentialKEK   = Method[DeriveCredentialKEKRequest, DeriveCredentialKEKResponse]{Route: "v1/derive-cred-kek", ReplyKey: true}
	SignSIWE              = Method[SignSIWERequest, SignSIWEResponse]{Route: "v1/sign/siwe"}
	SignTypedData         = Method[SignTypedDataRequest, SignTypedDataResponse]{Route: "v1/sign/typed-data"}
	SignAuditRow          = Method[SignAuditRowRequest, SignAuditRowResponse]{Route: "v1/sign/audit-row"}
	VerifyDeviceSignature = Method[VerifyDeviceSignatureRequest, VerifyDeviceSignatureResponse]{Route: "v1/verify/k10-sig"}
	VerifyWebAuthn        = Method[VerifyWebAuthnRequest, VerifyWebAuthnResponse]{Route: "v1/verify/k11-assertion"}
)

// The key administration methods (v1/keys), for the admin role and, for
// the sending half of a peer copy, the peer role.
var (
	KeyStatus     = Method[KeyStatusRequest, KeyStatusResponse]{Route: "v1/keys/status"}
	RotateKeys    = Method[RotateKeysRequest, RotateKeysResponse]{Route: "v1/keys/rotate", ChangesState: true}
	ImportKey     = Method[ImportKeyRequest, ImportKeyResponse]{Route: "v1/keys/import", ChangesState: true}
	PeerChallenge = Method[PeerChallengeRequest, PeerChallengeResponse]{Route: "v1/keys/peer-challenge"}
	PeerOffer     = Method[PeerOfferRequest, PeerOfferResponse]{Route: "v1/keys/peer-request"}
	PeerExport    = Method[PeerExportRequest, PeerExportResponse]{Route: "v1/keys/peer-export"}
	PeerImport    = Method[PeerImportRequest, PeerImportResponse]{Route: "v1/keys/peer-import", ChangesState: true}
)

// The compatibility surface (dev), served only when the configuration's
// dev_surface is set.
var (
	DevDeriveAddress    = Method[DevDeriveAddressRequest, DevDeriveAddressResponse]{Route: "dev/derive-address"}
	DevSignMessage      = Method[DevSignMessageRequest, DevSignMessageResponse]{Route: "dev/sign-message"}
	DevSignTypedData    = Method[DevSignTypedDataRequest, DevSignTypedDataResponse]{Route: "dev/sign-typed-data"}
	DevDeriveDevice     = Method[DevDeriveDeviceRequest, DevDeriveDeviceResponse]{Route: "dev/derive-device"}
	DevSignDeviceCapPop = Method[DevSignDeviceCapPopRequest, DevSignDeviceCapPopResponse]{Route: "dev/sign-device-cap-pop"}
)

// Methods lists every method, sorted by route.
func Methods() []MethodInfo {
	out := []MethodInfo{
		DeriveAddress.Info(), DeriveCredentialKEK.Info(), SignSIWE.Info(), SignTypedData.Info(), SignAuditRow.Info(),
		VerifyDeviceSignature.Info(), VerifyWebAuthn.Info(), OIDCDiscovery.Info(), OIDCToken.Info(), STSCredentials.Info(),
		KeyStatus.Info(), RotateKeys.Info(), ImportKey.Info(), PeerChallenge.Info(), PeerOffer.Info(), PeerExport.Info(),
		PeerImport.Info(),
		DevDeriveAddress.Info(), DevSignMessage.Info(), DevSignTypedData.Info(), DevDeriveDevice.Info(),
		DevSignDeviceCapPop.Info(),
	}
	slices.SortFunc(out, func(a, b MethodInfo) int { return strings.Compare(a.Route, b.Route) })
	return out
}

var byRoute = func() map[string]MethodInfo {
	m := map[string]MethodInfo{}
	for _, i := range Methods() {
		m[i.Route] = i
	}
	return m
}()

// Lookup returns the method at route.
func Lookup(route string) (MethodInfo, bool) {
	i, ok := byRoute[route]
	return i, ok
}

// Paths the parent serves besides the methods.
const (
	// PathAttestation answers GET ?nonce=HEX (0..64 bytes) with a fresh
	// attestation document, application/cbor, relayed from the enclave.
	PathAttestation = "/v1/attestation"
	// PathReady answers the enclave's Readiness, 200 when ready, else 503.
	PathReady = "/readyz"
	// PathHealth answers {"ok":true} while the parent runs.
	PathHealth = "/healthz"
)

// Readiness is the body of /readyz: the enclave's readiness as it signs
// nothing (the parent relays it; a client that needs it trusted calls
// KeyStatus).
type Readiness struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
	Epoch  uint32 `json:"k3_epoch"`
	KeyID  string `json:"kid"`
	// Panics counts the calls recovered from a panic since boot (the
	// parent exports it as signer_enclave_panics_total).
	Panics uint64 `json:"panics"`
	// Generation is the sealed keyring's in use, and Fleet how this
	// replica stands against the store (the parent exports both).
	Generation uint64 `json:"generation"`
	Fleet
}
