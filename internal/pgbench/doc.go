// Package pgbench holds the tests and benchmarks that put the pgstore
// module next to the tracker (one pool for both) or redisstore (the
// side-by-side latency benchmark), so that pgstore itself depends on
// neither River nor Redis. It has no code of its own; run
//
//	go test -race ./internal/pgbench
//	go test -run '^$' -bench . -benchtime 3000x ./internal/pgbench
package pgbench
