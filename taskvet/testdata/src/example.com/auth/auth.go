// Package auth stands for an application's authentication package: FromContext is the
// kind of ambient getter -ambient lists.
package auth

import "context"

type userKey struct{}

// FromContext returns the user a request's middleware put in ctx.
func FromContext(ctx context.Context) (string, bool) {
	user, ok := ctx.Value(userKey{}).(string)
	return user, ok
}

// Session has a method named like the getter; methods are never taken for it.
type Session struct{}

// FromContext is a method, not the function -ambient lists.
func (Session) FromContext(ctx context.Context) string { return "" }
