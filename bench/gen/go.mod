module parley/bench/gen

go 1.19
