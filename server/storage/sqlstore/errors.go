package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/apiplatform/platform/server/platform/storeerr"
)

// SQLSTATEs this package acts on.
const (
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeDuplicateTable       = "42P07"
	codeDuplicateObject      = "42710"
	codeQueryCanceled        = "57014" // statement_timeout
	// CockroachDB: the outcome of a statement is unknown (e.g. the gateway
	// lost its lease mid-commit).
	codeStatementCompletionUnknown = "40003"
)

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// retryable reports a serialization failure: the transaction was rolled back
// as a whole and running it again is safe. Deadlocks (40P01) are reported
// by PostgreSQL only; CockroachDB resolves them itself and returns 40001.
func retryable(err error) bool {
	switch sqlState(err) {
	case codeSerializationFailure, codeDeadlockDetected:
		return true
	}
	return false
}

// mapErr turns driver errors into the storage package's errors. Errors the
// store functions produce themselves (storeerr.ErrNotFound, ...) pass through.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return storeerr.ErrNotFound
	case errors.Is(err, storeerr.ErrNotFound), errors.Is(err, storeerr.ErrConflict),
		errors.Is(err, storeerr.ErrIdempotencyMismatch), errors.Is(err, storeerr.ErrUnavailable):
		return err
	}
	if code := sqlState(err); code != "" {
		switch {
		case code == codeUniqueViolation:
			return fmt.Errorf("%w: %w", storeerr.ErrConflict, err)
		case code == codeForeignKeyViolation:
			return fmt.Errorf("%w: referenced row does not exist: %w", storeerr.ErrNotFound, err)
		case retryable(err), code == codeStatementCompletionUnknown, code == codeQueryCanceled,
			code[:2] == "08", // connection exception
			code[:2] == "53", // insufficient resources (too many connections, ...)
			code[:2] == "57", // operator intervention (shutdown, cannot connect now)
			code[:2] == "58": // system error (I/O)
			return fmt.Errorf("%w: %w", storeerr.ErrUnavailable, err)
		}
		return err
	}
	if unreachable(err) {
		return fmt.Errorf("%w: %w", storeerr.ErrUnavailable, err)
	}
	return err
}

// unreachable reports errors that mean the database could not be reached or
// did not answer in time, as opposed to a request it refused.
func unreachable(err error) bool {
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		// The caller gave up: not the database's fault.
		return false
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}
