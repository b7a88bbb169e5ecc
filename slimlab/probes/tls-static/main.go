// Probe tls-static: a net/http client speaks TLS to a local TLS server (started by
// this program on loopback) and reads the answer. slimlab builds it without cgo and
// also checks that the binary is static (no ELF interpreter).
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
)

func main() {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s", map[bool]string{true: "TLS", false: "plain HTTP"}[r.TLS != nil])
	}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		fmt.Fprintf(os.Stderr, "GET: %v\n", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintf(os.Stderr, "read body: %v\n", err)
		os.Exit(1)
	}
	if resp.TLS == nil || !resp.TLS.HandshakeComplete {
		fmt.Fprintln(os.Stderr, "the response did not come over a TLS connection")
		os.Exit(1)
	}
	fmt.Printf("status=%d body=%q\n", resp.StatusCode, body)
}
