// Command hello is the smallest program a caller writes against the
// client: attest, call one method, print the verified answer. The
// dependency tests build it to hold the client's size.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/nitro-signer/nitro-signer/client"
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
	fmt.Println(out)
}
