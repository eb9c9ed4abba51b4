package nsm_test

import (
	"os"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/nsm"
)

func TestOpenDeviceFailsWithoutNSM(t *testing.T) {
	if _, err := os.Stat("/dev/nsm"); err == nil {
		t.Skip("/dev/nsm exists: this is a Nitro enclave")
	}
	d, err := nsm.OpenDevice()
	if err == nil {
		d.Close()
		t.Fatal("OpenDevice succeeded without /dev/nsm")
	}
}
