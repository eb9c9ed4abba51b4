package server_test

import (
	"strings"
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

// TestOnlyMethodsThatWaitRunOutsideTheWorkers: the key methods and
// v1/sts-credentials wait on the network and run on goroutines of their
// own; every other method only computes and runs on the workers.
func TestOnlyMethodsThatWaitRunOutsideTheWorkers(t *testing.T) {
	for route := range server.AllMethods() {
		want := strings.HasPrefix(route, "v1/keys/") || route == api.STSCredentials.Route
		if got := server.WaitsOnIO(route); got != want {
			t.Errorf("WaitsOnIO(%s) = %v, want %v", route, got, want)
		}
	}
}
