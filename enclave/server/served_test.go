package server_test

import (
	"testing"

	"github.com/nitro-signer/nitro-signer/api"
	"github.com/nitro-signer/nitro-signer/enclave/server"
)

// TestEveryAPIMethodIsServed: the enclave serves exactly the routes of the
// contract, so a method added on one side only fails here.
func TestEveryAPIMethodIsServed(t *testing.T) {
	served := server.AllMethods()
	for _, m := range api.Methods() {
		if !served[m.Route] {
			t.Errorf("api method %s is not served", m.Route)
		}
		delete(served, m.Route)
	}
	for r := range served {
		t.Errorf("the enclave serves %s, which the api does not have", r)
	}
}
