// Probe syscall-getpid: a direct system call, syscall.Syscall(SYS_GETPID), returns
// the same process ID as os.Getpid.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	pid, _, errno := syscall.Syscall(syscall.SYS_GETPID, 0, 0, 0)
	if errno != 0 {
		fmt.Fprintf(os.Stderr, "syscall getpid: %v\n", errno)
		os.Exit(1)
	}
	if int(pid) != os.Getpid() {
		fmt.Fprintf(os.Stderr, "syscall getpid says %d, os.Getpid says %d\n", pid, os.Getpid())
		os.Exit(1)
	}
	fmt.Println("getpid: syscall and os.Getpid agree")
}
