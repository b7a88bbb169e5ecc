// Probe system-roots: a TLS client that trusts the system's root certificates only, as
// one verifying a server does. In an image the roots are the base's CA bundle
// (/etc/ssl/certs/ca-certificates.crt). The caller generates a CA, appends it to that
// bundle in the probe's image, and passes a leaf it signed (PROBE_LEAF_CERT and
// PROBE_LEAF_KEY, PEM, for the name PROBE_SERVER_NAME): a TLS server in this process
// presents it over an in-memory pipe (no network), and the client's handshake succeeds
// only if the system pool holds the CA. A base without a bundle (scratch) has an empty
// pool: the handshake fails with "certificate signed by unknown authority".
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	pool, err := x509.SystemCertPool()
	if err != nil {
		fail("SystemCertPool: %v", err)
	}
	leaf, err := tls.X509KeyPair([]byte(os.Getenv("PROBE_LEAF_CERT")), []byte(os.Getenv("PROBE_LEAF_KEY")))
	if err != nil {
		fail("the leaf certificate and key (PROBE_LEAF_CERT, PROBE_LEAF_KEY): %v", err)
	}
	name := os.Getenv("PROBE_SERVER_NAME")
	serverSide, clientSide := net.Pipe()
	served := make(chan error, 1)
	go func() {
		server := tls.Server(serverSide, &tls.Config{Certificates: []tls.Certificate{leaf}})
		served <- server.Handshake()
		server.Close()
	}()
	// RootCAs is the system pool itself: nothing added here.
	client := tls.Client(clientSide, &tls.Config{RootCAs: pool, ServerName: name})
	if err := client.Handshake(); err != nil {
		n := len(pool.Subjects()) //nolint:staticcheck // how many roots the base gave, for the reason
		fail("TLS handshake with the system roots (%d certificates): %v", n, err)
	}
	client.Close()
	<-served
	fmt.Println("verified by the system roots")
}
