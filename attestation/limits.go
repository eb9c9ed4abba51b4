package attestation

import "time"

// Bounds on an attestation document. The field bounds are those of the AWS
// NSM specification (aws-nitro-enclaves-nsm-api, docs/attestation_process.md).
const (
	// MaxDocumentSize bounds the whole COSE_Sign1. The NSM answers in at most
	// 16 KiB, so no genuine document is larger.
	MaxDocumentSize = 16 << 10

	maxModuleIDLen   = 256
	maxPCRs          = 32 // indexes 0..31
	pcrLenSHA384     = 48
	maxCertLen       = 1024
	maxCABundle      = 8 // AWS chains carry the root and three or four intermediates
	maxPublicKeyLen  = 1024
	maxUserDataLen   = 512
	maxNonceLen      = 512
	coseSignatureLen = 96 // ES384: r || s, 48 bytes each
	maxNestedLevels  = 4  // COSE array > payload map > pcrs map / cabundle array

	// MaxManifestSize bounds a pcrs.json manifest; the manifest's fields
	// are bounded by maxManifestVersion, maxManifestInputs and
	// maxManifestInputName.
	MaxManifestSize      = 64 << 10
	maxManifestVersion   = 128
	maxManifestInputs    = 64
	maxManifestInputName = 128

	// DefaultClockSkew is how far in the future of the verification time a
	// document's timestamp may be before it is refused.
	DefaultClockSkew = time.Minute
)
