// Probe os-user: os/user finds the current user (user.Current, then user.LookupId).
// slimlab builds it without cgo and fully static, runs it and compares the answer with
// the password database as the host's C library sees it.
package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

func main() {
	u, err := user.Current()
	if err != nil {
		fmt.Fprintf(os.Stderr, "user.Current: %v\n", err)
		os.Exit(1)
	}
	if u.Uid != strconv.Itoa(os.Getuid()) {
		fmt.Fprintf(os.Stderr, "user.Current says uid %s, os.Getuid says %d\n", u.Uid, os.Getuid())
		os.Exit(1)
	}
	again, err := user.LookupId(u.Uid)
	if err != nil {
		fmt.Fprintf(os.Stderr, "user.LookupId(%s): %v\n", u.Uid, err)
		os.Exit(1)
	}
	fmt.Printf("uid=%s username=%s home=%s lookup=%s\n", u.Uid, u.Username, u.HomeDir, again.Username)
}
