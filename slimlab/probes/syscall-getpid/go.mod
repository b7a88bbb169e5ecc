module slimlab.probe/syscall-getpid

// Go 1.18: the probes must compile with every toolchain slimlab compares (gccgo 12 included).
go 1.18
