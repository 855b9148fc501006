// Package plain runs without -ambient and -state: only the defaults are reported.
package plain

import (
	"context"
	"database/sql"

	"example.com/auth"
	"example.com/store"
)

var db *sql.DB

// Sync reads a configured getter and a configured type, which this run does not
// configure.
//
//task:sync
func Sync(ctx context.Context) error {
	_, _ = auth.FromContext(ctx) // not configured: fine
	_ = store.Default            // not configured: fine
	return db.Ping()             // want `^package variable db \(\*sql.DB\) read in task sync:`
}
