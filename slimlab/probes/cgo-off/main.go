// Probe cgo-off: a program that uses the network stack (the package that pulls in cgo
// by default) builds and works with cgo disabled: a loopback TCP round trip and a
// host-name lookup through the pure-Go resolver (/etc/hosts).
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
	os.Exit(1)
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen", err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprint(c, "echo "+line)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fail("dial", err)
	}
	defer c.Close()
	fmt.Fprint(c, "ping\n")
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fail("read", err)
	}
	fmt.Print("tcp: ", reply)

	addrs, err := net.LookupHost("localhost")
	if err != nil {
		fail("lookup localhost", err)
	}
	loopback := false
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && ip.IsLoopback() {
			loopback = true
		}
	}
	fmt.Printf("localhost is loopback: %v\n", loopback)
}
