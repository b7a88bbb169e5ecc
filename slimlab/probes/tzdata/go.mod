module example.com/probe/tzdata

go 1.21
