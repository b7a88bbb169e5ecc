// Probe system-roots: crypto/x509 loads the system's root certificates, as a TLS client
// does to verify a server. In an image the roots are the base's CA bundle
// (/etc/ssl/certs/ca-certificates.crt): a base without one leaves the pool empty.
package main

import (
	"crypto/x509"
	"fmt"
	"os"
)

func main() {
	pool, err := x509.SystemCertPool()
	if err != nil {
		fmt.Fprintf(os.Stderr, "SystemCertPool: %v\n", err)
		os.Exit(1)
	}
	n := len(pool.Subjects()) //nolint:staticcheck // the count is what this probe reports
	if n == 0 {
		fmt.Fprintln(os.Stderr, "no system root certificates found")
		os.Exit(1)
	}
	fmt.Println("system roots found")
}
