// Package envelope is the authenticated request and response format shared by
// the enclave and its clients (DESIGN §3.3).
//
// A request is a compact JWS (ES256 or EdDSA) signed with the key of the
// caller's TLS client certificate; its protected header is exactly
// {"alg", "x5t#S256"}, the thumbprint naming the leaf of the certificate
// chain the parent forwards from the TLS handshake. The enclave verifies it
// with [Verifier]: chain to the caller CA, signature, audience, route,
// timestamp window and a never-seen nonce.
//
// A response is a compact JWS (ES256) by the enclave's per-boot key, whose
// SubjectPublicKeyInfo is the attestation document's public_key; its header
// "kid" is base64url(SHA-256(SPKI)) and its payload names the SHA-256 of the
// request bytes it answers. Clients check it with [VerifyResponse].
package envelope
