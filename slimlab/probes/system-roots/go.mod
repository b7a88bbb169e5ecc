module example.com/probe/system-roots

go 1.21
