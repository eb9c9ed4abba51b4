// Package kmstest is a local AWS KMS for tests: an HTTPS server on loopback
// that speaks KMS's JSON protocol (awsJson1_1, X-Amz-Target
// TrentService.GenerateDataKey and TrentService.Decrypt) and enforces a key
// policy on the Recipient attestation document as AWS does with the
// kms:RecipientAttestation:PCR<n> condition keys: the document must verify
// under the configured root, carry the pinned PCRs and not come from a
// debug-mode enclave, and the answer is then only a CiphertextForRecipient
// (CMS EnvelopedData to the document's RSA key), never a plaintext.
//
// It also serves a fake EC2 instance metadata service (IMDSv2) that hands
// out the credentials it expects requests to be signed with.
package kmstest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/enclave/seal/cms"
)

// Policy is the key policy the local KMS enforces.
type Policy struct {
	// KeyID is the one key this KMS holds (an ARN).
	KeyID string
	// Roots verify Recipient documents (the development root).
	Roots []*x509.Certificate
	// PCRs must all be present and equal in the Recipient document.
	PCRs map[int][]byte
	// AccessKeyID and SessionToken are what requests must be signed with.
	AccessKeyID, SecretAccessKey, SessionToken string
	Region                                     string
}

// Server is a running local KMS.
type Server struct {
	*httptest.Server
	policy Policy
	master cipher.AEAD
	// CAPEM is the server certificate (self-signed) clients must trust.
	CAPEM string
	// Refuse, when set, makes every call fail with this error type, as a
	// KMS whose key policy changed or whose key was disabled.
	Refuse atomic.Pointer[string]

	mu    sync.Mutex
	calls map[string]int
	// Refusals counts refused calls by reason.
	refusals []string
}

// Start starts a local KMS on 127.0.0.1.
func Start(p Policy) (*Server, error) {
	mk := make([]byte, 32)
	rand.Read(mk)
	block, _ := aes.NewCipher(mk)
	aead, _ := cipher.NewGCM(block)
	s := &Server{policy: p, master: aead, calls: map[string]int{}}
	cert, caPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	s.CAPEM = caPEM
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.Server.StartTLS()
	return s, nil
}

// HostPort is the server's address as the egress allow-list names it.
func (s *Server) HostPort() string { return s.Listener.Addr().String() }

// Calls returns how many calls of an operation succeeded.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Refusals lists the reasons of refused calls.
func (s *Server) Refusals() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refusals)
}

func selfSigned() (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kms.local"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), nil
}

type recipient struct {
	AttestationDocument    []byte `json:"AttestationDocument"`
	KeyEncryptionAlgorithm string `json:"KeyEncryptionAlgorithm"`
}

type request struct {
	KeyID             string            `json:"KeyId"`
	KeySpec           string            `json:"KeySpec"`
	NumberOfBytes     int               `json:"NumberOfBytes"`
	EncryptionContext map[string]string `json:"EncryptionContext"`
	CiphertextBlob    []byte            `json:"CiphertextBlob"`
	Recipient         *recipient        `json:"Recipient"`
}

type kmsError struct {
	status int
	typ    string
	msg    string
}

func (s *Server) refuse(w http.ResponseWriter, e kmsError) {
	s.mu.Lock()
	s.refusals = append(s.refusals, e.typ+": "+e.msg)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.typ)
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		s.refuse(w, kmsError{400, "UnknownOperationException", "expected POST application/x-amz-json-1.1"})
		return
	}
	if err := s.checkSignature(r); err != nil {
		s.refuse(w, kmsError{400, "UnrecognizedClientException", err.Error()})
		return
	}
	if why := s.Refuse.Load(); why != nil {
		s.refuse(w, kmsError{400, *why, "the local KMS was told to refuse"})
		return
	}
	var req request
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(body, &req) != nil {
		s.refuse(w, kmsError{400, "SerializationException", "malformed request"})
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	var out any
	var kerr *kmsError
	switch op {
	case "GenerateDataKey":
		out, kerr = s.generateDataKey(&req)
	case "Decrypt":
		out, kerr = s.decrypt(&req)
	default:
		kerr = &kmsError{400, "UnknownOperationException", op}
	}
	if kerr != nil {
		s.refuse(w, *kerr)
		return
	}
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

// checkSignature checks that the request is SigV4-signed for kms in the
// policy's region with the expected credentials. (The signature itself is
// not recomputed: the transport adds headers after signing.)
func (s *Server) checkSignature(r *http.Request) error {
	auth := r.Header.Get("Authorization")
	want := "AWS4-HMAC-SHA256 Credential=" + s.policy.AccessKeyID + "/"
	if !strings.HasPrefix(auth, want) || !strings.Contains(auth, "/"+s.policy.Region+"/kms/aws4_request") ||
		!strings.Contains(auth, "Signature=") {
		return fmt.Errorf("request not signed with the instance role's credentials")
	}
	if r.Header.Get("X-Amz-Security-Token") != s.policy.SessionToken {
		return fmt.Errorf("wrong session token")
	}
	return nil
}

// checkRecipient applies the key policy to the Recipient document and
// returns the RSA key to answer to.
func (s *Server) checkRecipient(rc *recipient) (*rsa.PublicKey, *kmsError) {
	if rc == nil {
		return nil, &kmsError{400, "AccessDeniedException", "the key policy requires a Recipient attestation document"}
	}
	if rc.KeyEncryptionAlgorithm != "RSAES_OAEP_SHA_256" {
		return nil, &kmsError{400, "ValidationException", "KeyEncryptionAlgorithm must be RSAES_OAEP_SHA_256"}
	}
	doc, err := attestation.Verify(rc.AttestationDocument, attestation.Policy{Roots: s.policy.Roots, MaxAge: 5 * time.Minute, AllowDebug: true, Clock: time.Now})
	if err != nil {
		return nil, &kmsError{400, "ValidationException", "invalid attestation document: " + attestation.Rule(err)}
	}
	if doc.Debug {
		return nil, &kmsError{400, "AccessDeniedException", "debug-mode enclaves do not match the key policy"}
	}
	// In index order, so the refusal names the first mismatch (PCR0, the
	// image, when the image differs) the same way every time.
	for _, i := range slices.Sorted(maps.Keys(s.policy.PCRs)) {
		if v := s.policy.PCRs[i]; string(doc.PCRs[i]) != string(v) {
			return nil, &kmsError{400, "AccessDeniedException", fmt.Sprintf("kms:RecipientAttestation:PCR%d does not match the key policy", i)}
		}
	}
	pub, err := x509.ParsePKIXPublicKey(doc.PublicKey)
	rsaPub, ok := pub.(*rsa.PublicKey)
	if err != nil || !ok || rsaPub.N.BitLen() < 2048 {
		return nil, &kmsError{400, "ValidationException", "the attestation document's public key is not an RSA key of 2048 bits or more"}
	}
	return rsaPub, nil
}

func contextAAD(keyID string, ec map[string]string) []byte {
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := []byte(keyID)
	for _, k := range keys {
		out = append(out, 0)
		out = append(out, k...)
		out = append(out, 0)
		out = append(out, ec[k]...)
	}
	return out
}

func (s *Server) generateDataKey(req *request) (any, *kmsError) {
	if req.KeyID != s.policy.KeyID {
		return nil, &kmsError{400, "NotFoundException", "no such key"}
	}
	if req.KeySpec != "AES_256" {
		return nil, &kmsError{400, "ValidationException", "KeySpec must be AES_256"}
	}
	pub, kerr := s.checkRecipient(req.Recipient)
	if kerr != nil {
		return nil, kerr
	}
	key := make([]byte, 32)
	rand.Read(key)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	blob := s.master.Seal(append([]byte("FKMS"), nonce...), nonce, key, contextAAD(req.KeyID, req.EncryptionContext))
	env, err := cms.Encrypt(pub, key, cms.EncryptOptions{Indefinite: true, SubjectKeyID: []byte("recipient")})
	if err != nil {
		return nil, &kmsError{500, "KMSInternalException", err.Error()}
	}
	return map[string]any{"KeyId": s.policy.KeyID, "CiphertextBlob": blob, "CiphertextForRecipient": env}, nil
}

func (s *Server) decrypt(req *request) (any, *kmsError) {
	if req.KeyID != "" && req.KeyID != s.policy.KeyID {
		return nil, &kmsError{400, "IncorrectKeyException", "the ciphertext was not encrypted under that key"}
	}
	pub, kerr := s.checkRecipient(req.Recipient)
	if kerr != nil {
		return nil, kerr
	}
	b := req.CiphertextBlob
	if len(b) < 4+12 || string(b[:4]) != "FKMS" {
		return nil, &kmsError{400, "InvalidCiphertextException", "malformed ciphertext"}
	}
	key, err := s.master.Open(nil, b[4:16], b[16:], contextAAD(s.policy.KeyID, req.EncryptionContext))
	if err != nil {
		return nil, &kmsError{400, "InvalidCiphertextException", "the ciphertext or encryption context is wrong"}
	}
	env, err := cms.Encrypt(pub, key, cms.EncryptOptions{Indefinite: true, SubjectKeyID: []byte("recipient")})
	if err != nil {
		return nil, &kmsError{500, "KMSInternalException", err.Error()}
	}
	return map[string]any{"KeyId": s.policy.KeyID, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT", "CiphertextForRecipient": env}, nil
}

// IMDS is a fake EC2 instance metadata service (IMDSv2 only).
type IMDS struct {
	*httptest.Server
}

// StartIMDS serves the policy's credentials for role "signer-role".
func StartIMDS(p Policy) *IMDS {
	const token = "imds-session-token"
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "ttl required", http.StatusBadRequest)
			return
		}
		io.WriteString(w, token)
	})
	authed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-aws-ec2-metadata-token") != token {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /latest/meta-data/iam/security-credentials/", authed(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "signer-role")
	}))
	mux.HandleFunc("GET /latest/meta-data/iam/security-credentials/signer-role", authed(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": p.AccessKeyID, "SecretAccessKey": p.SecretAccessKey,
			"Token": p.SessionToken, "Expiration": time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339),
		})
	}))
	return &IMDS{httptest.NewServer(mux)}
}
