// Package sqltest gives tests their own database on the server named by
// TEST_DATABASE_URL (which .ci/with-services exports), so suites sharing one
// PostgreSQL never see each other's rows.
package sqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URL returns TEST_DATABASE_URL, skipping the test when it is unset.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		t.Skip("TEST_DATABASE_URL is not set; run under .ci/with-services to test against PostgreSQL")
	}
	return base
}

var unsafe = regexp.MustCompile(`[^a-z0-9_]+`)

// FreshDatabaseURL creates an empty database, dropped when the test ends,
// and returns its URL.
func FreshDatabaseURL(t testing.TB) string {
	t.Helper()
	base := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to TEST_DATABASE_URL: %v", err)
	}
	defer conn.Close(ctx)
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := unsafe.ReplaceAllString(strings.ToLower(t.Name()), "_")
	name = "t_" + name[:min(len(name), 40)] + "_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		drop := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
		if strings.Contains(version, "CockroachDB") {
			drop = "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " CASCADE"
		}
		if _, err := conn.Exec(ctx, drop); err != nil {
			// Not the test's failure: the database is the throwaway
			// server's, which goes with it (a drop can outlast the
			// timeout on a machine kept busy on purpose).
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
