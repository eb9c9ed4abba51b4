// Package kmstest is a local AWS KMS for tests: an HTTPS server on loopback
// that speaks KMS's JSON protocol (awsJson1_1, X-Amz-Target
// TrentService.GenerateDataKey and TrentService.Decrypt) and enforces a key
// policy on the Recipient attestation document as AWS does with the
// kms:RecipientAttestation:PCR<n> condition keys.
//
// The policy is either a key policy document (Policy.KeyPolicy), in the
// JSON form `aws kms put-key-policy` takes and `signerctl kms policy`
// prints, evaluated as AWS evaluates it — principal (each account's
// credentials belong to a role), action, resource, conditions on the
// Recipient document's PCRs (after the document verifies under the
// configured root), on the encryption context and on aws:CurrentTime, an
// explicit Deny over any Allow, plaintext answered to a request without a
// Recipient if the policy allows it — or, simpler, a set of PCRs
// (Policy.PCRs): the document must verify, carry the pinned PCRs and not
// come from a debug-mode enclave, and the answer is then only a
// CiphertextForRecipient (CMS EnvelopedData to the document's RSA key),
// never a plaintext.
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
	"github.com/nitro-signer/nitro-signer/internal/kmspolicy"
)

// Policy is the key policy the local KMS enforces on its one attested key,
// and the other accounts it serves.
type Policy struct {
	// KeyID is the attested key (a key ARN); its account is the
	// operator's, and its key policy is the one this server enforces.
	KeyID string
	// Alias, when set, is an alias name ("alias/signer") for KeyID in the
	// operator's account.
	Alias string
	// Roots verify Recipient documents (the development root).
	Roots []*x509.Certificate
	// PCRs must all be present and equal in the Recipient document (when
	// KeyPolicy is nil).
	PCRs map[int][]byte
	// KeyPolicy, when set, is the key's policy document (kmspolicy.Parse
	// reads it), and every call on the key is decided by it; PCRs must then
	// be nil.
	KeyPolicy []byte
	// Role is the ARN of the IAM role the operator's credentials belong
	// to; empty means arn:aws:iam::ACCOUNT:role/signer-role, the role
	// StartIMDS serves.
	Role string
	// Clock is aws:CurrentTime for KeyPolicy; nil means time.Now.
	Clock func() time.Time
	// AccessKeyID and SessionToken are what the operator's requests must
	// be signed with.
	AccessKeyID, SecretAccessKey, SessionToken string
	Region                                     string
	// Others are further accounts, each with its own credentials and keys.
	Others []Account
}

// Account is an AWS account the local KMS serves besides the operator's:
// its own credentials, and keys whose key policies its owner wrote with no
// attestation condition — what a hostile parent sets up in an account it
// controls. As in AWS, an alias name or a bare key id is resolved in the
// account of the credentials that signed the request.
type Account struct {
	// ID is the 12-digit account id.
	ID string
	// AccessKeyID, SecretAccessKey and SessionToken are the account's
	// temporary credentials.
	AccessKeyID, SecretAccessKey, SessionToken string
	// Role is the ARN of the role those credentials belong to, the
	// principal a key policy sees; empty means
	// arn:aws:iam::ID:role/signer-role.
	Role string
	// Aliases map alias names ("alias/signer") to key ARNs in this account;
	// every key named here exists.
	Aliases map[string]string
}

// Operator returns the account that owns the policy's key.
func (p Policy) Operator() Account {
	a := Account{ID: arnAccount(p.KeyID), AccessKeyID: p.AccessKeyID, SecretAccessKey: p.SecretAccessKey,
		SessionToken: p.SessionToken, Role: p.Role, Aliases: map[string]string{}}
	if p.Alias != "" {
		a.Aliases[p.Alias] = p.KeyID
	}
	return a
}

// role is the ARN of the role the account's credentials belong to.
func (a *Account) role() string {
	if a.Role != "" {
		return a.Role
	}
	return "arn:aws:iam::" + a.ID + ":role/signer-role"
}

// arnAccount is the account field of an ARN, "" when s is not one.
func arnAccount(s string) string {
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || f[0] != "arn" {
		return ""
	}
	return f[4]
}

// key is one KMS key the server holds.
type key struct {
	arn     string
	account string
	// attested: the key policy demands a Recipient document with the
	// policy's PCRs (the operator's key); otherwise the owner's
	// credentials may do anything, plaintext included.
	attested bool
	// policy, when set, decides every call instead (Policy.KeyPolicy;
	// PutKeyPolicy replaces it).
	policy atomic.Pointer[keyPolicy]
}

// keyPolicy is a key policy as put and as read.
type keyPolicy struct {
	text []byte
	doc  *kmspolicy.Document
}

// Server is a running local KMS.
type Server struct {
	*httptest.Server
	policy   Policy
	accounts []Account
	keys     map[string]*key // by ARN
	master   cipher.AEAD
	// CAPEM is the server certificate (self-signed) clients must trust.
	CAPEM string
	// Refuse, when set, makes every call fail with this error type, as a
	// KMS whose key policy changed or whose key was disabled.
	Refuse atomic.Pointer[string]
	// AnswerKeyID, when set, is the KeyId every answer names instead of
	// the key that served it: a KMS (or a path to one) that resolved the
	// request to another key than the one asked for.
	AnswerKeyID atomic.Pointer[string]

	mu    sync.Mutex
	calls map[string]int
	used  map[string]int
	// Refusals counts refused calls by reason.
	refusals []string
}

// Start starts a local KMS on 127.0.0.1.
func Start(p Policy) (*Server, error) {
	mk := make([]byte, 32)
	rand.Read(mk)
	block, _ := aes.NewCipher(mk)
	aead, _ := cipher.NewGCM(block)
	s := &Server{policy: p, master: aead, calls: map[string]int{}, used: map[string]int{}, keys: map[string]*key{}}
	s.accounts = append([]Account{p.Operator()}, p.Others...)
	operator := &key{arn: p.KeyID, account: arnAccount(p.KeyID), attested: true}
	if p.KeyPolicy != nil {
		if p.PCRs != nil {
			return nil, fmt.Errorf("kmstest: give the key policy as KeyPolicy or as PCRs, not both")
		}
		doc, err := parseKeyPolicy(p.KeyPolicy)
		if err != nil {
			return nil, err
		}
		operator.attested = false
		operator.policy.Store(&keyPolicy{text: slices.Clone(p.KeyPolicy), doc: doc})
	}
	s.keys[p.KeyID] = operator
	for _, a := range p.Others {
		for alias, arn := range a.Aliases {
			if arnAccount(arn) != a.ID || !strings.HasPrefix(alias, "alias/") {
				return nil, fmt.Errorf("kmstest: account %s: alias %s for %s", a.ID, alias, arn)
			}
			s.keys[arn] = &key{arn: arn, account: a.ID}
		}
	}
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

// KeyPolicy is the attested key's policy as `aws kms get-key-policy
// --output text --query Policy` prints it; nil when the server was
// started with PCRs.
func (s *Server) KeyPolicy() []byte {
	if kp := s.keys[s.policy.KeyID].policy.Load(); kp != nil {
		return append(slices.Clone(kp.text), '\n')
	}
	return nil
}

// PutKeyPolicy replaces the attested key's policy, as `aws kms
// put-key-policy` does, for a server started with a KeyPolicy; the next
// call is decided by the new one.
func (s *Server) PutKeyPolicy(b []byte) error {
	k := s.keys[s.policy.KeyID]
	if k.policy.Load() == nil {
		return fmt.Errorf("kmstest: the server was started with PCRs, not a key policy")
	}
	doc, err := parseKeyPolicy(b)
	if err != nil {
		return err
	}
	k.policy.Store(&keyPolicy{text: slices.Clone(b), doc: doc})
	return nil
}

// HostPort is the server's address as the egress allow-list names it.
func (s *Server) HostPort() string { return s.Listener.Addr().String() }

// Calls returns how many calls of an operation succeeded.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Used returns how many calls a key served (by ARN).
func (s *Server) Used(keyARN string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[keyARN]
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
	caller, err := s.checkSignature(r)
	if err != nil {
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
	var out map[string]any
	var used *key
	var kerr *kmsError
	switch op {
	case "GenerateDataKey":
		out, used, kerr = s.generateDataKey(caller, &req)
	case "Decrypt":
		out, used, kerr = s.decrypt(caller, &req)
	default:
		kerr = &kmsError{400, "UnknownOperationException", op}
	}
	if kerr != nil {
		s.refuse(w, *kerr)
		return
	}
	out["KeyId"] = used.arn
	if other := s.AnswerKeyID.Load(); other != nil {
		out["KeyId"] = *other
	}
	s.mu.Lock()
	s.calls[op]++
	s.used[used.arn]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

// checkSignature checks that the request is SigV4-signed for kms in the
// policy's region with the credentials of one of the accounts, and returns
// that account. (The signature itself is not recomputed: the transport adds
// headers after signing.)
func (s *Server) checkSignature(r *http.Request) (*Account, error) {
	auth := r.Header.Get("Authorization")
	for i := range s.accounts {
		a := &s.accounts[i]
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+a.AccessKeyID+"/") {
			continue
		}
		if !strings.Contains(auth, "/"+s.policy.Region+"/kms/aws4_request") || !strings.Contains(auth, "Signature=") {
			return nil, fmt.Errorf("request not signed for kms in %s", s.policy.Region)
		}
		if r.Header.Get("X-Amz-Security-Token") != a.SessionToken {
			return nil, fmt.Errorf("wrong session token")
		}
		return a, nil
	}
	return nil, fmt.Errorf("request not signed with the credentials of a known account")
}

// resolve finds the key a request's KeyId names, as AWS does: a key ARN or
// an alias ARN names its account; an alias name or a bare key id is looked
// up in the caller's account. The key policy of a key in another account
// grants the caller nothing.
func (s *Server) resolve(caller *Account, id string) (*key, *kmsError) {
	notFound := &kmsError{400, "NotFoundException", "no such key"}
	var arn string
	switch f := strings.SplitN(id, ":", 6); {
	case len(f) == 6 && f[0] == "arn" && f[2] == "kms":
		if f[3] != s.policy.Region {
			return nil, notFound
		}
		switch {
		case strings.HasPrefix(f[5], "key/"):
			arn = id
		case strings.HasPrefix(f[5], "alias/"):
			for _, a := range s.accounts {
				if a.ID == f[4] {
					arn = a.Aliases[f[5]]
				}
			}
		}
	case strings.HasPrefix(id, "alias/"):
		arn = caller.Aliases[id]
	case id != "":
		arn = "arn:aws:kms:" + s.policy.Region + ":" + caller.ID + ":key/" + id
	}
	k := s.keys[arn]
	if k == nil {
		return nil, notFound
	}
	if k.account != caller.ID && k.policy.Load() == nil {
		return nil, &kmsError{400, "AccessDeniedException", "the key policy of " + k.arn + " grants account " + caller.ID + " nothing"}
	}
	return k, nil
}

// verifyRecipient verifies the Recipient document under the configured
// roots and returns it with the RSA key to answer to.
func (s *Server) verifyRecipient(rc *recipient) (*attestation.Document, *rsa.PublicKey, *kmsError) {
	if rc.KeyEncryptionAlgorithm != "RSAES_OAEP_SHA_256" {
		return nil, nil, &kmsError{400, "ValidationException", "KeyEncryptionAlgorithm must be RSAES_OAEP_SHA_256"}
	}
	doc, err := attestation.Verify(rc.AttestationDocument, attestation.Policy{Roots: s.policy.Roots, MaxAge: 5 * time.Minute, AllowDebug: true, Clock: time.Now})
	if err != nil {
		return nil, nil, &kmsError{400, "ValidationException", "invalid attestation document: " + attestation.Rule(err)}
	}
	pub, err := x509.ParsePKIXPublicKey(doc.PublicKey)
	rsaPub, ok := pub.(*rsa.PublicKey)
	if err != nil || !ok || rsaPub.N.BitLen() < 2048 {
		return nil, nil, &kmsError{400, "ValidationException", "the attestation document's public key is not an RSA key of 2048 bits or more"}
	}
	return doc, rsaPub, nil
}

// checkRecipient applies the PCRs to the Recipient document and returns
// the RSA key to answer to.
func (s *Server) checkRecipient(k *key, rc *recipient) (*rsa.PublicKey, *kmsError) {
	if rc == nil {
		return nil, &kmsError{400, "AccessDeniedException", "the key policy requires a Recipient attestation document"}
	}
	doc, rsaPub, kerr := s.verifyRecipient(rc)
	if kerr != nil {
		return nil, kerr
	}
	if k.attested {
		if doc.Debug {
			return nil, &kmsError{400, "AccessDeniedException", "debug-mode enclaves do not match the key policy"}
		}
		// In index order, so the refusal names the first mismatch (PCR0,
		// the image, when the image differs) the same way every time.
		for _, i := range slices.Sorted(maps.Keys(s.policy.PCRs)) {
			if v := s.policy.PCRs[i]; string(doc.PCRs[i]) != string(v) {
				return nil, &kmsError{400, "AccessDeniedException", fmt.Sprintf("kms:RecipientAttestation:PCR%d does not match the key policy", i)}
			}
		}
	}
	return rsaPub, nil
}

// answer puts the data key into out: to the Recipient when there is one
// (always, for the attested key), in plaintext otherwise. A key with a
// key policy answers only if the policy allows the call.
func (s *Server) answer(k *key, caller *Account, action string, req *request, dataKey []byte, out map[string]any) *kmsError {
	rc := req.Recipient
	var pub *rsa.PublicKey
	switch {
	case k.policy.Load() != nil:
		var doc *attestation.Document
		if rc != nil {
			var kerr *kmsError
			if doc, pub, kerr = s.verifyRecipient(rc); kerr != nil {
				return kerr
			}
		}
		clock := s.policy.Clock
		if clock == nil {
			clock = time.Now
		}
		if kerr := authorize(k.policy.Load().doc, newCall(action, caller, k, req.EncryptionContext, doc, clock())); kerr != nil {
			return kerr
		}
		if rc == nil {
			out["Plaintext"] = dataKey
			return nil
		}
	case rc == nil && !k.attested:
		out["Plaintext"] = dataKey
		return nil
	default:
		var kerr *kmsError
		if pub, kerr = s.checkRecipient(k, rc); kerr != nil {
			return kerr
		}
	}
	env, err := EncryptCMS(pub, dataKey, EncryptOptions{Indefinite: true, SubjectKeyID: []byte("recipient")})
	if err != nil {
		return &kmsError{500, "KMSInternalException", err.Error()}
	}
	out["CiphertextForRecipient"] = env
	return nil
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

// A ciphertext blob is "FKMS" ‖ len(ARN) ‖ ARN ‖ nonce ‖ AES-GCM: like
// AWS's, it names the key that made it.
const blobMagic = "FKMS"

func (s *Server) generateDataKey(caller *Account, req *request) (map[string]any, *key, *kmsError) {
	k, kerr := s.resolve(caller, req.KeyID)
	if kerr != nil {
		return nil, nil, kerr
	}
	if req.KeySpec != "AES_256" {
		return nil, nil, &kmsError{400, "ValidationException", "KeySpec must be AES_256"}
	}
	dataKey := make([]byte, 32)
	rand.Read(dataKey)
	out := map[string]any{}
	if kerr := s.answer(k, caller, "kms:GenerateDataKey", req, dataKey, out); kerr != nil {
		return nil, nil, kerr
	}
	nonce := make([]byte, 12)
	rand.Read(nonce)
	prefix := append(append([]byte(blobMagic), byte(len(k.arn))), k.arn...)
	out["CiphertextBlob"] = s.master.Seal(append(prefix, nonce...), nonce, dataKey, contextAAD(k.arn, req.EncryptionContext))
	return out, k, nil
}

func (s *Server) decrypt(caller *Account, req *request) (map[string]any, *key, *kmsError) {
	b := req.CiphertextBlob
	if len(b) < len(blobMagic)+1 || string(b[:len(blobMagic)]) != blobMagic || len(b) < len(blobMagic)+1+int(b[len(blobMagic)])+12 {
		return nil, nil, &kmsError{400, "InvalidCiphertextException", "malformed ciphertext"}
	}
	n := len(blobMagic) + 1 + int(b[len(blobMagic)])
	k, kerr := s.resolve(caller, string(b[len(blobMagic)+1:n]))
	if kerr != nil {
		if kerr.typ == "NotFoundException" {
			kerr = &kmsError{400, "InvalidCiphertextException", "malformed ciphertext"}
		}
		return nil, nil, kerr
	}
	if req.KeyID != "" {
		named, kerr := s.resolve(caller, req.KeyID)
		if kerr != nil {
			return nil, nil, kerr
		}
		if named != k {
			return nil, nil, &kmsError{400, "IncorrectKeyException", "the ciphertext was not encrypted under that key"}
		}
	}
	dataKey, err := s.master.Open(nil, b[n:n+12], b[n+12:], contextAAD(k.arn, req.EncryptionContext))
	if err != nil {
		return nil, nil, &kmsError{400, "InvalidCiphertextException", "the ciphertext or encryption context is wrong"}
	}
	out := map[string]any{"EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
	if kerr := s.answer(k, caller, "kms:Decrypt", req, dataKey, out); kerr != nil {
		return nil, nil, kerr
	}
	return out, k, nil
}

// IMDS is a fake EC2 instance metadata service (IMDSv2 only).
type IMDS struct {
	*httptest.Server
}

// StartIMDS serves the credentials of the policy's account for role
// "signer-role".
func StartIMDS(p Policy) *IMDS { return StartIMDSAs(p.Operator()) }

// StartIMDSAs serves the credentials of account a for role "signer-role":
// the IMDS of a parent that hands the enclave credentials of its choosing.
func StartIMDSAs(p Account) *IMDS {
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
