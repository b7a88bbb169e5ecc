module slimlab.example/httpd

go 1.21
