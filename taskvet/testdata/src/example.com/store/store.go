// Package store stands for an application's database package: Pool is the kind of type
// -state lists.
package store

// Pool is a connection pool.
type Pool struct{}

// Default is the pool a server opens at startup.
var Default *Pool
