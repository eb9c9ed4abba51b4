package siwe_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/nitro-signer/nitro-signer/attestation/testvectors"
	"github.com/nitro-signer/nitro-signer/enclave/siwe"
)

func TestParseFields(t *testing.T) {
	var positive map[string]struct {
		Message string `json:"message"`
		Fields  struct {
			Scheme    *string  `json:"scheme"`
			Statement *string  `json:"statement"`
			URI       string   `json:"uri"`
			RequestID *string  `json:"requestId"`
			Resources []string `json:"resources"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "eth", "siwe", "parsing_positive.json"), &positive); err != nil {
		t.Fatal(err)
	}
	for name, c := range positive {
		m, err := siwe.Parse(c.Message)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if m.URI != c.Fields.URI || len(m.Resources) != len(c.Fields.Resources) ||
			(m.Statement == nil) != (c.Fields.Statement == nil) || (c.Fields.Statement != nil && *m.Statement != *c.Fields.Statement) ||
			(c.Fields.Scheme != nil && m.Scheme != *c.Fields.Scheme) {
			t.Errorf("%s: parsed %+v, want %+v", name, m, c.Fields)
		}
	}
}

func FuzzParse(f *testing.F) {
	var positive map[string]struct {
		Message string `json:"message"`
	}
	json.Unmarshal(testvectors.Read(f, "eth", "siwe", "parsing_positive.json"), &positive)
	for _, c := range positive {
		f.Add(c.Message)
	}
	var negative map[string]string
	json.Unmarshal(testvectors.Read(f, "eth", "siwe", "parsing_negative.json"), &negative)
	for _, m := range negative {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, text string) {
		m, err := siwe.Parse(text)
		if err != nil {
			if !errors.Is(err, siwe.ErrMessage) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if m.Version != "1" || len(m.Nonce) < 8 || m.Domain == "" {
			t.Fatalf("accepted an incomplete message: %+v", m)
		}
	})
}
