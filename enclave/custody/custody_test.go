package custody_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/attestation"
	"github.com/nitro-signer/nitro-signer/enclave/custody"
	"github.com/nitro-signer/nitro-signer/enclave/host"
	"github.com/nitro-signer/nitro-signer/enclave/keyring"
	"github.com/nitro-signer/nitro-signer/enclave/nsm"
	"github.com/nitro-signer/nitro-signer/enclave/seal"
	"github.com/nitro-signer/nitro-signer/enclave/seal/devseal"
	"github.com/nitro-signer/nitro-signer/enclave/service"
	"github.com/nitro-signer/nitro-signer/envelope"
	"github.com/nitro-signer/nitro-signer/internal/hostproto"
)

const signerID = "signer-test"

// memStore is a state store in memory that can be told to fail: one
// parent's view of a store several may share (view).
type memStore struct {
	*backing
	// failPut and failList, when set, are what Put and List fail with.
	failPut, failList error
	// A lying parent: sequences hidden from List (and from Get when
	// hideGet), and a hook run before each Put (another replica's write).
	hidden    map[uint64]bool
	hideGet   bool
	failGet   map[uint64]bool
	beforePut func(seq uint64)
	// lieAfterPut, when set, is what Put answers after storing: a parent
	// that says a write failed (or lost) when it landed.
	lieAfterPut error
	// page bounds a listing (hostproto.MaxSequences when 0); lists and
	// gets count the calls.
	page        int
	lists, gets int
}

// backing is the objects a store holds.
type backing struct {
	mu    sync.Mutex
	blobs map[uint64][]byte
}

func newMemStore() *memStore { return &memStore{backing: &backing{blobs: map[uint64][]byte{}}} }

// view is another parent's view of the same objects.
func (m *memStore) view() *memStore { return &memStore{backing: m.backing} }

func (m *memStore) List(_ context.Context, after uint64) ([]uint64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lists++
	if m.failList != nil {
		return nil, false, m.failList
	}
	var all []uint64
	for seq := range m.blobs {
		if seq > after && !m.hidden[seq] {
			all = append(all, seq)
		}
	}
	slices.Sort(all)
	page := m.page
	if page == 0 {
		page = hostproto.MaxSequences
	}
	if len(all) > page {
		return all[:page], true, nil
	}
	return all, false, nil
}

func (m *memStore) Get(_ context.Context, seq uint64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	b, ok := m.blobs[seq]
	if !ok || (m.hideGet && m.hidden[seq]) {
		return nil, host.ErrNotFound
	}
	if m.failGet[seq] {
		return nil, &host.Error{Route: "state/get", Status: 500}
	}
	return bytes.Clone(b), nil
}

func (m *memStore) Put(_ context.Context, seq uint64, b []byte) error {
	m.mu.Lock()
	f := m.beforePut
	m.beforePut = nil
	m.mu.Unlock()
	if f != nil {
		f(seq)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failPut != nil {
		return m.failPut
	}
	if m.blobs[seq] != nil {
		return host.ErrExists
	}
	m.blobs[seq] = bytes.Clone(b)
	return m.lieAfterPut
}

func (m *memStore) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.blobs)
}

// simOptions are the simulated NSM's options, and simNSM what these
// tests use of it; openSimulator opens one, or skips the test when the
// simulator is not compiled in (sim_nsmsim_test.go, sim_other_test.go).
type simOptions struct {
	StateDir, Binary string
	Debug            bool
	Clock            func() time.Time
}

type simNSM interface {
	nsm.Module
	Root() *x509.Certificate
}

// enclave is one custody with its own simulated NSM and per-boot key.
type enclave struct {
	c      *custody.Custody
	keys   *keyring.Keyring
	store  *memStore
	x      *ecdh.PrivateKey
	sign   *ecdsa.PrivateKey
	sim    simNSM
	attest func(nonce []byte) ([]byte, error)
}

type opts struct {
	binary string // measured into the PCRs
	debug  bool
	store  *memStore
	sealer seal.Sealer
	// config is the configuration hash the enclave attests and holds its
	// peers to; zero bytes when nil. attestConfig, when set, is attested
	// instead while config is still what peers are held to: a sender that
	// lies about itself, to test the receiver's own check.
	config, attestConfig []byte
	// peers are the other releases the enclave accepts as peers.
	peers []attestation.Measurement
}

// world shares the development root and sealing key between enclaves, as
// replicas share the AWS root and the KMS key.
type world struct {
	dir    string
	binary string
	sealer seal.Sealer
	now    time.Time
}

func newWorld(t testing.TB) *world {
	dir := t.TempDir()
	bin := filepath.Join(dir, "enclave.bin")
	os.WriteFile(bin, []byte("enclave image A"), 0o644)
	s, err := devseal.Load(filepath.Join(dir, devseal.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return &world{dir: dir, binary: bin, sealer: s, now: time.Now()}
}

func (w *world) clock() time.Time { return w.now }

func (w *world) start(t testing.TB, o opts) *enclave {
	t.Helper()
	if o.binary == "" {
		o.binary = w.binary
	}
	if o.store == nil {
		o.store = newMemStore()
	}
	if o.sealer == nil {
		o.sealer = w.sealer
	}
	sim := openSimulator(t, simOptions{StateDir: w.dir, Binary: o.binary, Debug: o.debug, Clock: w.clock})
	pcrs := map[int][]byte{}
	for i := range 3 {
		p, _ := sim.DescribePCR(i)
		pcrs[i] = p.Value
	}
	x, _ := ecdh.X25519().GenerateKey(nil)
	sign, _ := ecdsa.GenerateKey(elliptic.P256(), nil)
	spki, _ := x509.MarshalPKIXPublicKey(&sign.PublicKey)
	if o.config == nil {
		o.config = make([]byte, 32)
	}
	attested := o.config
	if o.attestConfig != nil {
		attested = o.attestConfig
	}
	keys := keyring.New()
	e := &enclave{keys: keys, store: o.store, x: x, sign: sign, sim: sim}
	e.attest = func(nonce []byte) ([]byte, error) {
		ud, err := envelope.MarshalUserData(&api.UserData{Version: api.UserDataVersion, X25519: x.PublicKey().Bytes(),
			SignerID: signerID, ConfigSHA256: attested, Epoch: keys.Current()})
		if err != nil {
			return nil, err
		}
		return sim.Attest(nsm.AttestRequest{UserData: ud, Nonce: nonce, PublicKey: spki})
	}
	// The development root stands in for the AWS root.
	e.c = custody.New(custody.Options{
		Keys: keys, SignerID: signerID, Sealer: o.sealer, Store: o.store, X25519: x,
		Attest: e.attest, Signer: sign, ConfigSHA256: o.config,
		Random: sim, Peers: custody.PeerPolicy{Roots: rootsOf(sim), PCRs: pcrs, Releases: o.peers}, Clock: w.clock,
	})
	return e
}

func rootsOf(sim simNSM) []*x509.Certificate { return []*x509.Certificate{sim.Root()} }

// call runs a key method with params and decodes its result.
func (e *enclave) call(t testing.TB, route string, params, result any) error {
	t.Helper()
	p, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.c.Methods()[route](context.Background(), &service.Request{Params: p})
	if err != nil {
		return err
	}
	if result != nil {
		b, _ := json.Marshal(out)
		if err := json.Unmarshal(b, result); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}

func code(err error) api.Code { return api.CodeOf(err) }

func secretBytes(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func (e *enclave) importSecret(t testing.TB, secret []byte) error {
	t.Helper()
	ct, err := api.SealImport(e.x.PublicKey().Bytes(), signerID, secret)
	if err != nil {
		t.Fatal(err)
	}
	return e.call(t, api.ImportKey.Route, api.ImportKeyRequest{SealedSecret: ct}, nil)
}

var omni = keyring.Omni{1, 2, 3}

// address derives epoch e's wallet address from the keyring.
func address(t *testing.T, k *keyring.Keyring, epoch uint32) string {
	t.Helper()
	key, err := k.Derive(keyring.Wallet, epoch, omni)
	if err != nil {
		t.Fatal(err)
	}
	return key.Address().Hex()
}

// expected derives the same address from a secret, independently of any
// custody.
func expected(t *testing.T, secret []byte) string {
	t.Helper()
	k := keyring.New()
	s, _ := keyring.NewSecret(secret)
	k.Add(s)
	return address(t, k, 1)
}

func TestImportSealsBeforeUse(t *testing.T) {
	w := newWorld(t)
	e := w.start(t, opts{})
	if err := e.c.Unseal(context.Background()); !errors.Is(err, custody.ErrNoState) {
		t.Fatalf("empty store: %v", err)
	}
	if st := e.c.Status(); st.Ready || !strings.Contains(st.Reason, "import") {
		t.Fatalf("status before import: %+v", st)
	}
	if err := e.importSecret(t, secretBytes(7)); err != nil {
		t.Fatal(err)
	}
	if e.store.count() != 1 || e.keys.Current() != 1 {
		t.Fatalf("after import: %d stored, epoch %d", e.store.count(), e.keys.Current())
	}
	if got, want := address(t, e.keys, 1), expected(t, secretBytes(7)); got != want {
		t.Fatalf("imported address %s, want %s", got, want)
	}
	st := e.c.Status()
	if !st.Ready || st.Epoch != 1 || st.Generation != 1 || st.Sequence != 1 || st.Sealer != "dev" {
		t.Fatalf("status after import: %+v", st)
	}
	// A restart unseals the same keyring.
	again := w.start(t, opts{store: e.store})
	if err := again.c.Unseal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if address(t, again.keys, 1) != address(t, e.keys, 1) {
		t.Fatal("restart derived another address")
	}
}

func TestImportRefusedIntoNonEmptyKeyring(t *testing.T) {
	w := newWorld(t)
	e := w.start(t, opts{})
	if err := e.importSecret(t, secretBytes(1)); err != nil {
		t.Fatal(err)
	}
	if err := e.importSecret(t, secretBytes(2)); code(err) != api.CodeKeyringNotEmpty {
		t.Fatalf("second import: %v", err)
	}
	// A fresh enclave over a store that holds sealed keyrings refuses an
	// import even before (or without) unsealing them.
	fresh := w.start(t, opts{store: e.store})
	if err := fresh.importSecret(t, secretBytes(2)); code(err) != api.CodeKeyringNotEmpty {
		t.Fatalf("import over a stored keyring: %v", err)
	}
	if e.store.count() != 1 {
		t.Fatalf("refused imports stored %d keyrings", e.store.count())
	}
}

func TestImportRefusedWhenSealedToAnotherKey(t *testing.T) {
	w := newWorld(t)
	e := w.start(t, opts{})
	other, _ := ecdh.X25519().GenerateKey(nil)
	ct, _ := api.SealImport(other.PublicKey().Bytes(), signerID, secretBytes(1))
	err := e.call(t, api.ImportKey.Route, api.ImportKeyRequest{SealedSecret: ct}, nil)
	if code(err) != api.CodeBadRequest || e.store.count() != 0 || e.keys.Current() != 0 {
		t.Fatalf("import sealed to another key: %v", err)
	}
	ct, _ = api.SealImport(e.x.PublicKey().Bytes(), "another-signer", secretBytes(1))
	if err := e.call(t, api.ImportKey.Route, api.ImportKeyRequest{SealedSecret: ct}, nil); code(err) != api.CodeBadRequest {
		t.Fatalf("import sealed for another signer_id: %v", err)
	}
}

func TestImportRefusedWhenStoreCannotWrite(t *testing.T) {
	w := newWorld(t)
	e := w.start(t, opts{})
	e.store.failPut = errors.New("disk full")
	if err := e.importSecret(t, secretBytes(1)); code(err) != api.CodeStateUnavailable {
		t.Fatalf("import with a failing store: %v", err)
	}
	if e.keys.Current() != 0 {
		t.Fatal("an unsealed import became the keyring")
	}
}

func imported(t *testing.T, w *world) *enclave {
	t.Helper()
	e := w.start(t, opts{})
	if err := e.importSecret(t, secretBytes(9)); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRotateAddsSealedEpoch(t *testing.T) {
	w := newWorld(t)
	e := imported(t, w)
	before := address(t, e.keys, 1)
	var r api.KeyringChange
	if err := e.call(t, api.RotateKeys.Route, struct{}{}, &r); err != nil {
		t.Fatal(err)
	}
	if r.Epoch != 2 || r.Generation != 2 || r.Sequence != 2 {
		t.Fatalf("rotate result %+v", r)
	}
	if address(t, e.keys, 1) != before {
		t.Fatal("epoch 1 changed")
	}
	if address(t, e.keys, 2) == before {
		t.Fatal("epoch 2 equals epoch 1")
	}
	again := w.start(t, opts{store: e.store})
	if err := again.c.Unseal(context.Background()); err != nil {
		t.Fatal(err)
	}
	for ep := uint32(1); ep <= 2; ep++ {
		if address(t, again.keys, ep) != address(t, e.keys, ep) {
			t.Fatalf("epoch %d differs after restart", ep)
		}
	}
}

func TestRotateRefusedWhenStoreCannotWrite(t *testing.T) {
	w := newWorld(t)
	e := imported(t, w)
	e.store.failPut = errors.New("disk full")
	if err := e.call(t, api.RotateKeys.Route, struct{}{}, nil); code(err) != api.CodeStateUnavailable {
		t.Fatalf("rotate with a failing store: %v", err)
	}
	if st := e.c.Status(); st.Epoch != 1 || st.Generation != 1 || e.store.count() != 1 {
		t.Fatalf("a refused rotation changed the state: %+v", st)
	}
	e.store.failPut = nil
	if err := e.call(t, api.RotateKeys.Route, struct{}{}, nil); err != nil {
		t.Fatalf("rotate after the store recovered: %v", err)
	}
}

func TestRotateRefusedOnEmptyKeyring(t *testing.T) {
	e := newWorld(t).start(t, opts{})
	if err := e.call(t, api.RotateKeys.Route, struct{}{}, nil); code(err) != api.CodeSignerDisabled {
		t.Fatalf("rotate with no keys: %v", err)
	}
}

func TestUnsealFallsBackPastCorruptSequences(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)-5] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"empty", func([]byte) []byte { return []byte{} }},
		{"garbage", func([]byte) []byte { return []byte("not a keyring") }},
		{"wrapped key altered", func(b []byte) []byte {
			h, _ := seal.ParseHeader(b)
			i := bytes.Index(b, h.WrappedKey)
			b[i+len(h.WrappedKey)-1] ^= 1
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			e := imported(t, w)
			if err := e.call(t, api.RotateKeys.Route, struct{}{}, nil); err != nil {
				t.Fatal(err)
			}
			e.store.blobs[2] = tc.corrupt(e.store.blobs[2])
			kept := bytes.Clone(e.store.blobs[2])
			again := w.start(t, opts{store: e.store})
			if err := again.c.Unseal(context.Background()); err != nil {
				t.Fatalf("unseal with a corrupt newest sequence: %v", err)
			}
			if st := again.c.Status(); st.Epoch != 1 || st.Sequence != 1 {
				t.Fatalf("fell back to %+v, want sequence 1", st)
			}
			if !bytes.Equal(e.store.blobs[2], kept) {
				t.Fatal("the corrupt sequence was not kept for inspection")
			}
			// The next change goes to a new sequence, past the corrupt one.
			var r api.KeyringChange
			if err := again.call(t, api.RotateKeys.Route, struct{}{}, &r); err != nil || r.Sequence != 3 {
				t.Fatalf("rotate after fallback: %+v, %v", r, err)
			}
		})
	}
}

func TestUnsealFailsWhenEverySequenceIsCorrupt(t *testing.T) {
	w := newWorld(t)
	e := imported(t, w)
	e.store.blobs[1][len(e.store.blobs[1])-1] ^= 1
	again := w.start(t, opts{store: e.store})
	err := again.c.Unseal(context.Background())
	if err == nil || errors.Is(err, custody.ErrNoState) {
		t.Fatalf("unseal of a corrupt store: %v", err)
	}
	if st := again.c.Status(); st.Ready || !strings.Contains(st.Reason, "unsealing failed") {
		t.Fatalf("status: %+v", st)
	}
	if err := again.importSecret(t, secretBytes(1)); code(err) != api.CodeKeyringNotEmpty {
		t.Fatalf("import over an unreadable store: %v", err)
	}
}

// lie is text from outside the enclave that must never reach readiness or
// a signed answer.
const lie = "visit https://evil.example/recover"

// kmsRefusal is KMS's answer as the AWS SDK reports it: an error code and a
// message that quotes the caller's principal, whose names the parent's
// credentials choose.
type kmsRefusal struct{ code string }

func (k kmsRefusal) ErrorCode() string { return k.code }
func (k kmsRefusal) Error() string {
	return "api error " + k.code + ": User: arn:aws:sts::1:assumed-role/" + lie + " is not authorized"
}

// refusingSealer stands for KMS refusing to release data keys.
type refusingSealer struct {
	seal.Sealer
	err error
}

func (r refusingSealer) Unwrap(context.Context, string, []byte) ([]byte, error) { return nil, r.err }

// Readiness and keys/status say why the keyring is sealed in the enclave's
// own words: the step, the rule, the route and status of a failed call to
// the parent, KMS's error code — never text from outside.
func TestUnsealReasonNeverQuotesTextFromOutside(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sealer func(seal.Sealer) seal.Sealer
		store  func(*memStore, seal.Sealer)
		want   string
	}{
		{name: "bad_kms_refusal", sealer: func(s seal.Sealer) seal.Sealer { return refusingSealer{s, kmsRefusal{"AccessDeniedException"}} },
			want: "unsealing failed: sequence 1: the sealer could not unwrap the data key: KMS answered AccessDeniedException"},
		{name: "bad_kms_error_code", sealer: func(s seal.Sealer) seal.Sealer { return refusingSealer{s, kmsRefusal{lie}} },
			want: "unsealing failed: sequence 1: the sealer could not unwrap the data key: KMS refused"},
		{name: "bad_credentials_reply", sealer: func(s seal.Sealer) seal.Sealer {
			return refusingSealer{s, fmt.Errorf("get credentials: %w", &host.Error{Route: hostproto.RouteCredentials, Status: 503})}
		}, want: "unsealing failed: sequence 1: the sealer could not unwrap the data key: host: parent unavailable: aws/credentials: status 503"},
		{name: "bad_sealer_error_text", sealer: func(s seal.Sealer) seal.Sealer { return refusingSealer{s, errors.New(lie)} },
			want: "unsealing failed: sequence 1: the sealer could not unwrap the data key"},
		{name: "bad_store_list_reply", store: func(m *memStore, _ seal.Sealer) {
			m.failList = &host.Error{Route: hostproto.RouteStateList, Status: 500}
		},
			want: "unsealing failed: listing sealed keyrings: host: parent unavailable: state/list: status 500"},
		{name: "bad_store_error_text", store: func(m *memStore, _ seal.Sealer) { m.failList = errors.New(lie) },
			want: "unsealing failed: listing sealed keyrings: failed (the enclave's log has the cause)"},
		{name: "bad_sealed_header", store: func(m *memStore, s seal.Sealer) {
			// The only file is sealed "for" a signer_id that is the lie.
			b, err := seal.Seal(context.Background(), s, lie, &seal.Keyring{Generation: 1, Epochs: oneEpoch()}, time.Now())
			if err != nil {
				panic(err)
			}
			m.blobs[1] = b
		}, want: "unsealing failed: no sealed keyring opens: sequence 1: sealed by another sealer or for another signer_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			e := imported(t, w)
			sealer := w.sealer
			if tc.sealer != nil {
				sealer = tc.sealer(w.sealer)
			}
			if tc.store != nil {
				tc.store(e.store, w.sealer)
			}
			again := w.start(t, opts{store: e.store, sealer: sealer})
			if err := again.c.Unseal(context.Background()); err == nil || errors.Is(err, custody.ErrNoState) {
				t.Fatalf("unseal: %v", err)
			}
			st := again.c.Status()
			if st.Ready || st.Reason != tc.want {
				t.Fatalf("reason %q, want %q", st.Reason, tc.want)
			}
			if strings.Contains(st.Reason, "evil") {
				t.Fatalf("the reason quotes text from outside: %q", st.Reason)
			}
		})
	}
}

// A change the store or the sealer refuses is answered (and signed) in the
// enclave's own words too.
func TestChangeRefusalNeverQuotesTextFromOutside(t *testing.T) {
	w := newWorld(t)
	e := imported(t, w)
	e.store.failPut = &host.Error{Route: hostproto.RouteStatePut, Status: 507}
	err := e.call(t, api.RotateKeys.Route, struct{}{}, nil)
	if code(err) != api.CodeStateUnavailable ||
		err.Error() != "state_unavailable: storing the sealed keyring failed: host: parent unavailable: state/put: status 507" {
		t.Fatalf("rotate with state/put failing: %v", err)
	}
	e.store.failPut = errors.New(lie)
	if err := e.call(t, api.RotateKeys.Route, struct{}{}, nil); code(err) != api.CodeStateUnavailable || strings.Contains(err.Error(), "evil") {
		t.Fatalf("rotate with a store error quoting text: %v", err)
	}
	sealing := w.start(t, opts{store: newMemStore(), sealer: newKeySealer{w.sealer, kmsRefusal{"AccessDeniedException"}}})
	if err := sealing.importSecret(t, secretBytes(3)); code(err) != api.CodeStateUnavailable ||
		err.Error() != "state_unavailable: sealing failed: KMS answered AccessDeniedException" {
		t.Fatalf("import with KMS refusing a data key: %v", err)
	}
}

// newKeySealer stands for KMS refusing to make data keys.
type newKeySealer struct {
	seal.Sealer
	err error
}

func (n newKeySealer) NewDataKey(context.Context, string) ([]byte, []byte, error) {
	return nil, nil, n.err
}

func oneEpoch() []*keyring.Secret {
	s, _ := keyring.NewSecret(secretBytes(5))
	return []*keyring.Secret{s}
}

// copyKeyring runs the four peer calls from s to r, with hooks to tamper.
func copyKeyring(t *testing.T, s, r *enclave) (api.KeyringChange, error) {
	t.Helper()
	var ch api.PeerChallengeResponse
	if err := s.call(t, api.PeerChallenge.Route, struct{}{}, &ch); err != nil {
		return api.KeyringChange{}, fmt.Errorf("challenge: %w", err)
	}
	var offer api.PeerOfferResponse
	if err := r.call(t, api.PeerOffer.Route, api.PeerOfferRequest(ch), &offer); err != nil {
		return api.KeyringChange{}, fmt.Errorf("request: %w", err)
	}
	var exp api.PeerExportResponse
	if err := s.call(t, api.PeerExport.Route, api.PeerExportRequest{Challenge: ch.Challenge, Document: offer.Document, Nonce: offer.Nonce}, &exp); err != nil {
		return api.KeyringChange{}, fmt.Errorf("export: %w", err)
	}
	var res api.KeyringChange
	if err := r.call(t, api.PeerImport.Route, api.PeerImportRequest{Nonce: offer.Nonce, Document: exp.Document, Keyring: exp.Keyring, Signature: exp.Signature}, &res); err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	return res, nil
}

func TestPeerCopy(t *testing.T) {
	w := newWorld(t)
	s := imported(t, w)
	s.call(t, api.RotateKeys.Route, struct{}{}, nil)
	r := w.start(t, opts{})
	res, err := copyKeyring(t, s, r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Epoch != 2 || res.Generation != 2 || r.store.count() != 1 {
		t.Fatalf("copy result %+v, %d stored", res, r.store.count())
	}
	for ep := uint32(1); ep <= 2; ep++ {
		if address(t, r.keys, ep) != address(t, s.keys, ep) {
			t.Fatalf("epoch %d differs after the copy", ep)
		}
	}
	// Copying again finds nothing newer and writes nothing.
	res, err = copyKeyring(t, s, r)
	if err != nil || !res.Unchanged || r.store.count() != 1 {
		t.Fatalf("second copy: %+v, %v", res, err)
	}
	// A rotation on the sender travels on the next copy.
	s.call(t, api.RotateKeys.Route, struct{}{}, nil)
	if res, err = copyKeyring(t, s, r); err != nil || res.Epoch != 3 || res.Generation != 3 {
		t.Fatalf("copy after rotation: %+v, %v", res, err)
	}
}

func TestPeerCopyRefusesDifferentPCRs(t *testing.T) {
	w := newWorld(t)
	s := imported(t, w)
	other := filepath.Join(w.dir, "other.bin")
	os.WriteFile(other, []byte("enclave image B"), 0o644)
	r := w.start(t, opts{binary: other})
	if _, err := copyKeyring(t, s, r); code(errors.Unwrap(err)) != api.CodePeerRefused &&
		code(err) != api.CodePeerRefused {
		t.Fatalf("copy to an enclave with other PCRs: %v", err)
	}
	if r.keys.Current() != 0 || r.store.count() != 0 {
		t.Fatal("the receiver changed")
	}
}

func TestPeerCopyRefusesDebugPeer(t *testing.T) {
	w := newWorld(t)
	s := imported(t, w)
	r := w.start(t, opts{debug: true})
	_, err := copyKeyring(t, s, r)
	if code(errors.Unwrap(err)) != api.CodePeerRefused || !strings.Contains(err.Error(), "export") {
		t.Fatalf("copy to a debug enclave: %v", err)
	}
	if r.keys.Current() != 0 {
		t.Fatal("a debug enclave received the keyring")
	}
}

func TestPeerCopyRefusesReplay(t *testing.T) {
	w := newWorld(t)
	s := imported(t, w)
	r := w.start(t, opts{})
	var ch api.PeerChallengeResponse
	s.call(t, api.PeerChallenge.Route, struct{}{}, &ch)
	var offer api.PeerOfferResponse
	r.call(t, api.PeerOffer.Route, api.PeerOfferRequest(ch), &offer)
	exportReq := api.PeerExportRequest{Challenge: ch.Challenge, Document: offer.Document, Nonce: offer.Nonce}
	var exp api.PeerExportResponse
	if err := s.call(t, api.PeerExport.Route, exportReq, &exp); err != nil {
		t.Fatal(err)
	}
	if err := s.call(t, api.PeerExport.Route, exportReq, nil); code(err) != api.CodeReplayed {
		t.Fatalf("replayed export: %v", err)
	}
	importReq := api.PeerImportRequest{Nonce: offer.Nonce, Document: exp.Document, Keyring: exp.Keyring, Signature: exp.Signature}
	if err := r.call(t, api.PeerImport.Route, importReq, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.call(t, api.PeerImport.Route, importReq, nil); code(err) != api.CodeReplayed {
		t.Fatalf("replayed import: %v", err)
	}
	// A document over another nonce than the one issued is refused.
	var ch2 api.PeerChallengeResponse
	s.call(t, api.PeerChallenge.Route, struct{}{}, &ch2)
	var offer2 api.PeerOfferResponse
	r.call(t, api.PeerOffer.Route, api.PeerOfferRequest(ch2), &offer2)
	err := s.call(t, api.PeerExport.Route, api.PeerExportRequest{Challenge: ch2.Challenge, Document: offer.Document, Nonce: offer2.Nonce}, nil)
	if code(err) != api.CodePeerRefused {
		t.Fatalf("export for a document over an old nonce: %v", err)
	}
	// A receiver's nonce is not a sender's challenge, nor the reverse.
	var ch3 api.PeerChallengeResponse
	s.call(t, api.PeerChallenge.Route, struct{}{}, &ch3)
	var offer3 api.PeerOfferResponse
	s.call(t, api.PeerOffer.Route, api.PeerOfferRequest(ch3), &offer3) // s as a receiver of itself
	if err := s.call(t, api.PeerExport.Route, api.PeerExportRequest{Challenge: offer3.Nonce, Document: offer3.Document, Nonce: offer3.Nonce}, nil); code(err) != api.CodeReplayed {
		t.Fatalf("an offer nonce used as a challenge: %v", err)
	}
	if err := s.call(t, api.PeerImport.Route, api.PeerImportRequest{Nonce: ch3.Challenge, Document: offer3.Document, Keyring: []byte("x")}, nil); code(err) != api.CodeReplayed {
		t.Fatalf("a challenge used as an offer nonce: %v", err)
	}
}

func TestPeerCopyRefusesRollback(t *testing.T) {
	w := newWorld(t)
	s := imported(t, w)
	r := w.start(t, opts{})
	if _, err := copyKeyring(t, s, r); err != nil {
		t.Fatal(err)
	}
	r.call(t, api.RotateKeys.Route, struct{}{}, nil) // r is now ahead
	if _, err := copyKeyring(t, s, r); code(err) != api.CodeRollback {
		t.Fatalf("copy of an older keyring: %v", err)
	}
	if r.keys.Current() != 2 {
		t.Fatal("rollback changed the receiver")
	}
	// Both rotated independently: same generation, different epoch 2.
	s.call(t, api.RotateKeys.Route, struct{}{}, nil)
	s.call(t, api.RotateKeys.Route, struct{}{}, nil)
	if _, err := copyKeyring(t, s, r); code(err) != api.CodeRollback {
		t.Fatalf("copy of a diverged keyring: %v", err)
	}
	// A keyring of another lineage is refused too.
	stranger := w.start(t, opts{})
	stranger.importSecret(t, secretBytes(3))
	if _, err := copyKeyring(t, stranger, r); code(err) != api.CodeRollback {
		t.Fatalf("copy of another lineage: %v", err)
	}
}

func TestPeerCopyFromEmptyIsRefused(t *testing.T) {
	w := newWorld(t)
	s := w.start(t, opts{})
	r := w.start(t, opts{})
	if _, err := copyKeyring(t, s, r); code(errors.Unwrap(err)) != api.CodeSignerDisabled {
		t.Fatalf("copy from an empty enclave: %v", err)
	}
}

func TestKeyMethodsRefuseUnknownParams(t *testing.T) {
	e := newWorld(t).start(t, opts{})
	for route := range e.c.Methods() {
		_, err := e.c.Methods()[route](context.Background(), &service.Request{Params: json.RawMessage(`{"unexpected":1}`)})
		if code(err) != api.CodeBadRequest {
			t.Errorf("%s with an unknown field: %v", route, err)
		}
	}
}

// FuzzKeyMethodParams feeds every key method arbitrary params: each answers
// with a typed error or a result, never a panic, and a refused call leaves
// the keyring and the store as they were.
func FuzzKeyMethodParams(f *testing.F) {
	routes := []string{api.KeyStatus.Route, api.RotateKeys.Route, api.ImportKey.Route, api.PeerChallenge.Route,
		api.PeerOffer.Route, api.PeerExport.Route, api.PeerImport.Route}
	for i := range routes {
		f.Add(uint8(i), []byte(`{}`))
		f.Add(uint8(i), []byte(`{"sealed_secret":"AAAA","challenge":"AAAA","nonce":"AAAA","document":"AAAA","keyring":"AAAA"}`))
		f.Add(uint8(i), []byte(`{"nonce":"AAAA","document":"AAAA","keyring":"AAAA","signature":"AAAA"}`))
		f.Add(uint8(i), []byte(`{"challenge":"`+strings.Repeat("A", 43)+`="}`))
	}
	w := newWorld(f)
	e := w.start(f, opts{})
	if err := e.importSecret(f, secretBytes(4)); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, route uint8, params []byte) {
		r := routes[int(route)%len(routes)]
		before, stored := e.keys.Current(), e.store.count()
		out, err := e.c.Methods()[r](context.Background(), &service.Request{Params: params})
		if err != nil {
			var ee *api.Error
			if !errors.As(err, &ee) {
				t.Fatalf("%s: untyped error %v", r, err)
			}
			if e.keys.Current() != before || e.store.count() != stored {
				t.Fatalf("%s: a refused call changed the keyring", r)
			}
			return
		}
		if out == nil {
			t.Fatalf("%s: no result and no error", r)
		}
	})
}

// blockingSealer stands for KMS taking its time: NewDataKey waits until
// released; entered is closed when the first call comes.
type blockingSealer struct {
	seal.Sealer
	entered, release chan struct{}
	once             *sync.Once
}

func newBlockingSealer(s seal.Sealer) blockingSealer {
	return blockingSealer{Sealer: s, entered: make(chan struct{}), release: make(chan struct{}), once: new(sync.Once)}
}

func (b blockingSealer) NewDataKey(ctx context.Context, signerID string) ([]byte, []byte, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return b.Sealer.NewDataKey(ctx, signerID)
}

// rotationInProgress starts an enclave whose KMS takes its time and a
// rotation on it, and returns once the rotation waits in KMS: it ends, on
// done, once b.release is closed.
func rotationInProgress(t *testing.T) (*enclave, blockingSealer, <-chan error) {
	t.Helper()
	w := newWorld(t)
	e := imported(t, w)
	b := newBlockingSealer(w.sealer)
	slow := w.start(t, opts{store: e.store, sealer: b})
	if err := slow.c.Unseal(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- slow.call(t, api.RotateKeys.Route, struct{}{}, nil) }()
	<-b.entered
	return slow, b, done
}

// Readiness does not wait on a change in progress: a rotation blocked in
// KMS leaves Status answering (and reporting the keyring still in use).
func TestStatusDoesNotWaitForAChange(t *testing.T) {
	slow, b, done := rotationInProgress(t)
	status := make(chan api.KeyStatusResponse, 1)
	go func() { status <- slow.c.Status() }()
	select {
	case st := <-status:
		if !st.Ready || st.Epoch != 1 || st.Generation != 1 {
			t.Fatalf("status during the rotation: %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Status waited for the rotation's sealer")
	}
	close(b.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := slow.c.Status(); st.Epoch != 2 || st.Generation != 2 {
		t.Fatalf("status after the rotation: %+v", st)
	}
}

// A change waits for another in progress only until its deadline: a
// rotation blocked in KMS makes a second one, and a Unseal, end at their
// deadlines with a timeout, not when the first is done. Waiting past it,
// the second would run after its caller was told it timed out, and the
// channel would see its answer come late.
func TestChangeWaitsForAnotherOnlyUntilItsDeadline(t *testing.T) {
	slow, b, done := rotationInProgress(t)
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"rotate", func(ctx context.Context) error {
			_, err := slow.c.Methods()[api.RotateKeys.Route](ctx, &service.Request{Params: []byte("{}")})
			return err
		}},
		{"unseal", func(ctx context.Context) error { return slow.c.Unseal(ctx) }},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		res := make(chan error, 1)
		go func() { res <- tc.run(ctx) }()
		select {
		case err := <-res:
			if tc.name == "rotate" && code(err) != api.CodeTimeout {
				t.Errorf("%s behind a change in progress: %v, want code %s", tc.name, err, api.CodeTimeout)
			}
			if tc.name == "unseal" && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s behind a change in progress: %v, want context.DeadlineExceeded", tc.name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s waited for the change in progress past its deadline", tc.name)
		}
		cancel()
	}
	close(b.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := slow.c.Status(); st.Epoch != 2 {
		t.Fatalf("status after one rotation: %+v", st)
	}
}
