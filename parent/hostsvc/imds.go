package hostsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/hostproto"
)

// IMDS fetches the instance role's credentials from the EC2 instance
// metadata service, version 2 (a session token first, then the role's
// credentials), and caches them until five minutes before they expire.
type IMDS struct {
	// Endpoint is the metadata service, normally http://169.254.169.254.
	Endpoint string
	Client   *http.Client

	mu     sync.Mutex
	cached *hostproto.Credentials
}

const imdsTokenTTL = "21600"

// LogValue logs the endpoint only: never the cached credentials, and
// without taking the lock a fetch may hold.
func (m *IMDS) LogValue() slog.Value {
	return slog.GroupValue(slog.String("endpoint", m.Endpoint))
}

// Credentials returns the cached credentials or fetches new ones.
func (m *IMDS) Credentials(ctx context.Context) (*hostproto.Credentials, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cached != nil && time.Until(m.cached.Expiration) > 5*time.Minute {
		c := *m.cached
		return &c, nil
	}
	c, err := m.fetch(ctx)
	if err != nil {
		return nil, err
	}
	m.cached = c
	out := *c
	return &out, nil
}

func (m *IMDS) do(ctx context.Context, method, path, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(m.Endpoint, "/")+path, nil)
	if err != nil {
		return "", err
	}
	if method == http.MethodPut {
		req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", imdsTokenTTL)
	} else {
		req.Header.Set("X-aws-ec2-metadata-token", token)
	}
	client := m.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("imds %s %s: status %d", method, path, resp.StatusCode)
	}
	return string(b), nil
}

func (m *IMDS) fetch(ctx context.Context) (*hostproto.Credentials, error) {
	token, err := m.do(ctx, http.MethodPut, "/latest/api/token", "")
	if err != nil {
		return nil, err
	}
	roles, err := m.do(ctx, http.MethodGet, "/latest/meta-data/iam/security-credentials/", token)
	if err != nil {
		return nil, err
	}
	role := strings.TrimSpace(strings.SplitN(roles, "\n", 2)[0])
	if role == "" || strings.ContainsAny(role, "/?#") {
		return nil, errors.New("imds: no instance role")
	}
	body, err := m.do(ctx, http.MethodGet, "/latest/meta-data/iam/security-credentials/"+role, token)
	if err != nil {
		return nil, err
	}
	var r struct {
		Code            string
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      time.Time
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, errors.New("imds: malformed credentials")
	}
	if r.Code != "Success" || r.AccessKeyID == "" || r.SecretAccessKey == "" {
		return nil, fmt.Errorf("imds: credentials not available (code %q)", r.Code)
	}
	return hostproto.NewCredentials(r.AccessKeyID, r.SecretAccessKey, r.Token, r.Expiration), nil
}
