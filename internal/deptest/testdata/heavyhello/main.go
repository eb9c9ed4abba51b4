// Command heavyhello is the hello program as it was when the client linked
// the enclave's methods for their request and response types: the size
// test's control.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/nitro-signer/nitro-signer/client"
	"github.com/nitro-signer/nitro-signer/enclave/service"
)

func main() {
	c, err := client.New(client.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var out map[string]any
	if err := c.Call(context.Background(), "v1/derive-address", map[string]string{"operator_omni": os.Args[1]}, &out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(out, service.AllMethods())
}
