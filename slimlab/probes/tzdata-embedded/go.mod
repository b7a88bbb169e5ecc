module example.com/probe/tzdata-embedded

go 1.21
