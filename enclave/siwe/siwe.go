// Package siwe parses Sign-In with Ethereum messages (EIP-4361) exactly:
// every byte of the text is accounted for by the grammar, so the message
// that is checked is byte for byte the message that is signed.
package siwe

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	txt "github.com/nitro-signer/nitro-signer/internal/text"
)

// MaxSize bounds a message.
const MaxSize = 8 << 10

// maxResources bounds the resources list.
const maxResources = 64

// ErrMessage marks a text that is not an EIP-4361 message.
var ErrMessage = errors.New("siwe: malformed message")

// Message is a parsed EIP-4361 message. Optional fields are nil when absent.
type Message struct {
	Scheme         string // "" when the domain line names none
	Domain         string // an RFC 3986 authority
	Address        common.Address
	Statement      *string
	URI            string
	Version        string
	ChainID        uint64
	Nonce          string
	IssuedAt       time.Time
	ExpirationTime *time.Time
	NotBefore      *time.Time
	RequestID      *string
	Resources      []string
}

const header = " wants you to sign in with your Ethereum account:"

var (
	schemePattern    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)
	authorityPattern = regexp.MustCompile(`^(?:(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*@)?` +
		`(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)(?::[0-9]*)?$`)
	addressPattern   = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)
	chainIDPattern   = regexp.MustCompile(`^[0-9]{1,19}$`)
	noncePattern     = regexp.MustCompile(`^[A-Za-z0-9]{8,}$`)
	datetimePattern  = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$`)
	requestIDPattern = regexp.MustCompile(`^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*$`)
)

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMessage, fmt.Sprintf(format, args...))
}

// Parse parses text as an EIP-4361 message.
func Parse(text string) (*Message, error) {
	if len(text) == 0 || len(text) > MaxSize {
		return nil, bad("%d bytes, want 1..%d", len(text), MaxSize)
	}
	lines := strings.Split(text, "\n")
	p := &parser{lines: lines}
	m := &Message{}

	first, ok := strings.CutSuffix(p.next(), header)
	if !ok {
		return nil, bad("the first line must end %q", header)
	}
	if scheme, rest, found := strings.Cut(first, "://"); found {
		if !schemePattern.MatchString(scheme) {
			return nil, bad("scheme %q", scheme)
		}
		m.Scheme, first = scheme, rest
	}
	if !authorityPattern.MatchString(first) {
		return nil, bad("domain is not an RFC 3986 authority")
	}
	m.Domain = first

	addr := p.next()
	if !addressPattern.MatchString(addr) || common.HexToAddress(addr).Hex() != addr {
		return nil, bad("address is not an EIP-55 checksummed address")
	}
	m.Address = common.HexToAddress(addr)
	if p.next() != "" {
		return nil, bad("a blank line must follow the address")
	}
	if s := p.next(); s != "" {
		if strings.ContainsFunc(s, isControl) {
			return nil, bad("statement has a control character")
		}
		m.Statement = &s
		if p.next() != "" {
			return nil, bad("a blank line must follow the statement")
		}
	}
	var err error
	if m.URI, err = uriField(p.field("URI: ")); err != nil {
		return nil, err
	}
	if m.Version = p.field("Version: "); m.Version != "1" {
		return nil, bad("version must be 1")
	}
	chain := p.field("Chain ID: ")
	if !chainIDPattern.MatchString(chain) {
		return nil, bad("chain id is not a number")
	}
	if m.ChainID, err = strconv.ParseUint(chain, 10, 64); err != nil {
		return nil, bad("chain id out of range")
	}
	if m.Nonce = p.field("Nonce: "); !noncePattern.MatchString(m.Nonce) {
		return nil, bad("nonce must be at least 8 alphanumeric characters")
	}
	if m.IssuedAt, err = datetime("issued-at", p.field("Issued At: ")); err != nil {
		return nil, err
	}
	if v, ok := p.optional("Expiration Time: "); ok {
		t, err := datetime("expiration-time", v)
		if err != nil {
			return nil, err
		}
		m.ExpirationTime = &t
	}
	if v, ok := p.optional("Not Before: "); ok {
		t, err := datetime("not-before", v)
		if err != nil {
			return nil, err
		}
		m.NotBefore = &t
	}
	if v, ok := p.optional("Request ID: "); ok {
		if !requestIDPattern.MatchString(v) {
			return nil, bad("request id has characters outside RFC 3986 pchar")
		}
		m.RequestID = &v
	}
	if p.more() && p.peek() == "Resources:" {
		p.next()
		for p.more() {
			r, ok := strings.CutPrefix(p.next(), "- ")
			if !ok {
				return nil, bad("resource lines start with \"- \"")
			}
			if _, err := uriField(r); err != nil {
				return nil, err
			}
			if len(m.Resources) == maxResources {
				return nil, bad("more than %d resources", maxResources)
			}
			m.Resources = append(m.Resources, r)
		}
		if len(m.Resources) == 0 {
			return nil, bad("Resources: lists none")
		}
	}
	if p.more() || p.err != nil {
		if p.err != nil {
			return nil, p.err
		}
		return nil, bad("unexpected line %q", txt.Truncate(p.peek()))
	}
	return m, nil
}

// parser walks the lines; a missing line records an error and yields "".
type parser struct {
	lines []string
	i     int
	err   error
}

func (p *parser) more() bool   { return p.i < len(p.lines) }
func (p *parser) peek() string { return p.lines[p.i] }

func (p *parser) next() string {
	if !p.more() {
		if p.err == nil {
			p.err = bad("message ends early")
		}
		return "\x00"
	}
	p.i++
	return p.lines[p.i-1]
}

// field reads a mandatory "Name: value" line.
func (p *parser) field(prefix string) string {
	line := p.next()
	v, ok := strings.CutPrefix(line, prefix)
	if !ok {
		if p.err == nil {
			p.err = bad("expected %q", strings.TrimSpace(prefix))
		}
		return "\x00"
	}
	return v
}

// optional reads an optional "Name: value" line if it comes next.
func (p *parser) optional(prefix string) (string, bool) {
	if !p.more() {
		return "", false
	}
	v, ok := strings.CutPrefix(p.peek(), prefix)
	if ok {
		p.i++
	}
	return v, ok
}

func uriField(s string) (string, error) {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", bad("URI is empty or has spaces or control characters")
	}
	u, err := url.Parse(s)
	if err != nil || !schemePattern.MatchString(u.Scheme) {
		return "", bad("%q is not an absolute RFC 3986 URI", txt.Truncate(s))
	}
	return s, nil
}

func datetime(name, s string) (time.Time, error) {
	if !datetimePattern.MatchString(s) {
		return time.Time{}, bad("%s is not an RFC 3339 date-time", name)
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		return time.Time{}, bad("%s is not a valid date-time", name)
	}
	return t, nil
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }
