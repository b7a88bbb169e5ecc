// Probe tzdata: time.LoadLocation reads the zone from the system's zoneinfo
// (/usr/share/zoneinfo): a base without tzdata cannot name a time zone.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		fmt.Fprintf(os.Stderr, "LoadLocation: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(time.Date(2024, 1, 15, 12, 0, 0, 0, loc).Format("MST"))
}
