// Package storeerr holds what every storage engine shares: the errors a store
// reports. The store interfaces themselves belong to the services that use
// them (identity.Store, favorite.Store, share.Store, ...); engines live in
// subpackages (embedded, sqlstore).
package storeerr

import (
	"context"
	"errors"
)

var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a unique key is already taken.
	ErrConflict = errors.New("storage: conflict")
	// ErrIdempotencyMismatch: an idempotency key was reused with a different
	// request.
	ErrIdempotencyMismatch = errors.New("storage: idempotency key reused with a different request")
	// ErrUnavailable wraps failures to reach the database; callers answer
	// UNAVAILABLE and may retry.
	ErrUnavailable = errors.New("storage: unavailable")
)

// Idempotency asks a write to be recorded under a client-chosen key, in the
// same transaction as the write, so that a retry returns the first result.
type Idempotency struct {
	// Scope separates operations (e.g. "favorite.set"); Key is the client's.
	Scope, Key string
	// RequestHash identifies the request body; a retry must match it.
	RequestHash []byte
	// Response is what the first call answered, replayed to retries.
	Response []byte
}

type staleKey struct{}

// WithStaleReads marks reads made with ctx as tolerant of a few seconds of
// staleness. On CockroachDB they may then be served by the nearest replica
// (follower reads: no cross-region round trip); on engines without follower
// reads the mark changes nothing.
func WithStaleReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, staleKey{}, true)
}

// StaleReadsOK reports whether ctx was marked by WithStaleReads.
func StaleReadsOK(ctx context.Context) bool {
	ok, _ := ctx.Value(staleKey{}).(bool)
	return ok
}
