// Command httpsfloor is the least any Go caller of an HTTPS service links:
// one GET with the standard library's client. The dependency tests build
// it beside the hello program to see what the client adds.
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	r, err := http.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(r.Status)
}
