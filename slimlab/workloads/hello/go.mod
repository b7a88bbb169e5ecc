module slimlab.example/hello

go 1.21
