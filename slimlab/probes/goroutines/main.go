// Probe goroutines: a worker pool of goroutines fed and drained through channels,
// a select with a timeout, a mutex and a WaitGroup; the sum must be exact.
package main

import (
	"fmt"
	"os"
	"sync"
	"time"
)

const (
	workers = 64
	jobs    = 20000
)

func main() {
	in := make(chan int)
	out := make(chan int, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	perWorker := map[int]int{}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			for n := range in {
				mu.Lock()
				perWorker[id]++
				mu.Unlock()
				out <- n * 2
			}
		}(w)
	}
	go func() {
		for n := 1; n <= jobs; n++ {
			in <- n
		}
		close(in)
	}()
	go func() {
		wg.Wait()
		close(out)
	}()
	sum, count := 0, 0
	deadline := time.After(20 * time.Second)
	for done := false; !done; {
		select {
		case v, ok := <-out:
			if !ok {
				done = true
				break
			}
			sum += v
			count++
		case <-deadline:
			fmt.Fprintln(os.Stderr, "the workers did not finish in 20s")
			os.Exit(1)
		}
	}
	handled := 0
	for _, n := range perWorker {
		handled += n
	}
	fmt.Printf("jobs=%d handled=%d sum=%d\n", count, handled, sum)
}
