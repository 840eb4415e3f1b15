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
	"sync"
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
	return freshDatabase(t, "")
}

// templates holds the migrated database MigratedDatabaseURL copies, made
// once per process and dropped by DropTemplates.
var templates struct {
	sync.Mutex
	name string
	err  error
	done bool
}

// MigratedDatabaseURL is FreshDatabaseURL with the schema in place. The
// first call in a process runs migrate on a template database; every call
// copies it (CREATE DATABASE ... TEMPLATE), a fraction of what running
// the migrations each time costs. CockroachDB has no templates: there each
// database is migrated. The server under test still runs its migrations
// on start, which then find nothing to do.
func MigratedDatabaseURL(t testing.TB, migrate func(ctx context.Context, url string) error) string {
	t.Helper()
	base := URL(t)
	templates.Lock()
	if !templates.done {
		templates.done = true
		templates.name, templates.err = migratedTemplate(base, migrate)
	}
	name, err := templates.name, templates.err
	templates.Unlock()
	if err != nil {
		t.Fatalf("template database: %v", err)
	}
	url := freshDatabase(t, name)
	if name == "" { // CockroachDB
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := migrate(ctx, url); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	return url
}

func migratedTemplate(base string, migrate func(ctx context.Context, url string) error) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	crdb, err := isCockroach(ctx, conn)
	if err != nil || crdb {
		return "", err
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "template_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	if err := migrate(ctx, withPath(base, name)); err != nil {
		return "", err
	}
	// migrate's pool is closed; a copy needs the template to have no
	// sessions, and pooled connections may take a moment to go.
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&n); err != nil || n == 0 {
			return name, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// DropTemplates drops the template database this process made, if any;
// call it from TestMain after the tests ran.
func DropTemplates() {
	templates.Lock()
	defer templates.Unlock()
	base := os.Getenv("TEST_DATABASE_URL")
	if templates.name == "" || base == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, base); err == nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{templates.name}.Sanitize()+" WITH (FORCE)")
		_ = conn.Close(ctx)
	}
	templates.name, templates.done = "", false
}

// isCockroach reports whether conn's server is CockroachDB rather than
// PostgreSQL (its version() says so).
func isCockroach(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return false, err
	}
	return strings.Contains(version, "CockroachDB"), nil
}

func withPath(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + name
	return u.String()
}

// freshDatabase creates a database (a copy of template, if named), dropped
// when the test ends, and returns its URL.
func freshDatabase(t testing.TB, template string) string {
	t.Helper()
	base := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to TEST_DATABASE_URL: %v", err)
	}
	defer conn.Close(ctx)
	crdb, err := isCockroach(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := unsafe.ReplaceAllString(strings.ToLower(t.Name()), "_")
	name = "t_" + name[:min(len(name), 40)] + "_" + hex.EncodeToString(b[:])
	create := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		create += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, create); err != nil {
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
		if crdb {
			drop = "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " CASCADE"
		}
		if _, err := conn.Exec(ctx, drop); err != nil {
			// Not the test's failure: the database is the throwaway
			// server's, which goes with it (a drop can outlast the
			// timeout on a machine kept busy on purpose).
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return withPath(base, name)
}
