package hostsvc_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/hostproto"
	"github.com/nitro-signer/nitro-signer/internal/logtest"
	"github.com/nitro-signer/nitro-signer/parent/hostsvc"
	"github.com/nitro-signer/nitro-signer/parent/proxy"
)

const (
	imdsSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYIMDSSECRETKEY"
	imdsToken     = "IQoJb3JpZ2luX2VjIMDSSESSIONTOKEN0123456789"
)

// parentHandler is the parent binary's handler: its log sink, slog's JSON
// handler with no options (parent/cmd/parent).
func parentHandler(w io.Writer) (slog.Handler, func()) {
	s := proxy.NewLogSink(w, 4096, nil)
	return s.Handler(), s.Close
}

// The parent holds the instance role's credentials from IMDS; whatever of
// them reaches its log, through its own handler, holds no secret.
func TestCredentialsNeverReachTheLog(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("tok")) })
	mux.HandleFunc("GET /latest/meta-data/iam/security-credentials/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("role-a\n"))
	})
	mux.HandleFunc("GET /latest/meta-data/iam/security-credentials/role-a", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"Code": "Success", "AccessKeyId": "ASIAIMDSACCESSKEY", "SecretAccessKey": imdsSecretKey,
			"Token": imdsToken, "Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	imds := &hostsvc.IMDS{Endpoint: srv.URL}
	c, err := imds.Credentials(context.Background())
	if err != nil || c.SecretAccessKey() != imdsSecretKey {
		t.Fatalf("imds: %v", err)
	}
	secrets := [][]byte{[]byte(imdsSecretKey), []byte(imdsToken)}
	for name, v := range map[string]any{"credentials": *c, "imds_with_cache": imds} {
		t.Run(name, func(t *testing.T) {
			logtest.NeverLoggedThrough(t, "parent", parentHandler, v, secrets...)
			logtest.NeverLogged(t, v, secrets...)
		})
	}
	// The aws/credentials answer carries them to the enclave, and only it.
	s := service(t)
	h, flush := parentHandler(io.Discard)
	s.Logger = slog.New(h)
	s.Credentials = imds
	r := call(s, hostproto.RouteCredentials, nil)
	flush()
	back, err := hostproto.ParseCredentials(r.Body)
	if r.Status != 200 || err != nil || back.SecretAccessKey() != imdsSecretKey || back.SessionToken() != imdsToken {
		t.Fatalf("aws/credentials: %d, %v", r.Status, err)
	}
}
