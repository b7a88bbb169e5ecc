// Probe tzdata-embedded: the tzdata probe with time/tzdata compiled in, so it needs no
// zoneinfo from the base.
package main

import (
	"fmt"
	"os"
	"time"
	_ "time/tzdata" // the zoneinfo database inside the binary (about 450 KB)
)

func main() {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		fmt.Fprintf(os.Stderr, "LoadLocation: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(time.Date(2024, 1, 15, 12, 0, 0, 0, loc).Format("MST"))
}
