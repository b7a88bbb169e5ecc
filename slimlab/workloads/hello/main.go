// hello is the smallest useful CLI: it prints one fixed line and exits 0.
package main

import "fmt"

func main() {
	fmt.Println("hello from slimlab")
}
