package sqlstore

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/storage/storetest"
)

// The shared store suite, each case on its own fresh database.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		s := openFresh(t, Config{})
		return storetest.Stores{Identity: s, Favorite: s, Share: s}
	})
}

func TestEngineDetection(t *testing.T) {
	for version, want := range map[string]string{
		"PostgreSQL 15.8 (Debian 15.8-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc":    EnginePostgreSQL,
		"CockroachDB CCL v24.1.0 (x86_64-pc-linux-gnu, built 2024/05/15 21:28:29, go1.22.2)": EngineCockroachDB,
		"CockroachDB OSS v21.2.17 (x86_64-unknown-linux-gnu, built 2022/10/24)":              EngineCockroachDB,
	} {
		if got := engineOf(version); got != want {
			t.Errorf("engineOf(%q) = %s, want %s", version, got, want)
		}
	}
	// The test server is PostgreSQL.
	s := openFresh(t, Config{})
	if s.Engine() != EnginePostgreSQL {
		t.Fatalf("Engine() = %q, want %q", s.Engine(), EnginePostgreSQL)
	}
}

func TestConfigValidation(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "mysql://x"}, "postgres://"},
		{Config{URL: "postgres://localhost/db", MaxConns: -1}, "negative"},
		{Config{URL: "postgres://localhost/db", Regions: []string{"us-east1", "US_WEST"}}, "invalid region"},
		{Config{URL: "postgres://localhost/db", Regions: []string{"us-east1", "us-east1"}}, "twice"},
		{Config{URL: "postgres://localhost/db", Region: "eu-west1", Regions: []string{"us-east1"}}, "not one of"},
	} {
		_, err := Open(ctx, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v) = %v, want an error mentioning %q", c.cfg, err, c.want)
		}
	}
}

// Both schemes open; pool settings are applied.
func TestOpenSchemesAndPoolSettings(t *testing.T) {
	url := freshDatabaseURL(t)
	ctx := context.Background()
	for _, u := range []string{url, "postgresql://" + strings.TrimPrefix(url, "postgres://")} {
		s, err := Open(ctx, Config{URL: u, MaxConns: 3, MaxConnLifetime: time.Minute, StatementTimeout: 1500 * time.Millisecond})
		if err != nil {
			t.Fatalf("Open(%s): %v", u, err)
		}
		if got := s.pool.Config().MaxConns; got != 3 {
			t.Errorf("MaxConns = %d", got)
		}
		if got := s.pool.Config().MaxConnLifetime; got != time.Minute {
			t.Errorf("MaxConnLifetime = %v", got)
		}
		var timeout, iso string
		if err := s.pool.QueryRow(ctx, "SELECT current_setting('statement_timeout'), current_setting('transaction_isolation')").Scan(&timeout, &iso); err != nil {
			t.Fatal(err)
		}
		if timeout != "1500ms" || iso != "serializable" {
			t.Errorf("statement_timeout = %s, isolation = %s; want 1500ms, serializable", timeout, iso)
		}
		_ = s.Close()
	}
}

func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	// Nothing listens on this port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, err = Open(ctx, Config{URL: "postgres://postgres@" + addr + "/x?sslmode=disable&connect_timeout=2"})
	if !errors.Is(err, storeerr.ErrUnavailable) {
		t.Fatalf("Open on a closed port: %v, want ErrUnavailable", err)
	}

	s := openFresh(t, Config{StatementTimeout: 50 * time.Millisecond})
	// A statement past the server-side timeout.
	err = mapErr(s.do(ctx, func() error {
		_, err := s.pool.Exec(ctx, "SELECT pg_sleep(2)")
		return err
	}))
	if !errors.Is(err, storeerr.ErrUnavailable) {
		t.Fatalf("statement timeout: %v, want ErrUnavailable", err)
	}
	// A caller's deadline.
	dctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if _, err := s.GetUser(dctx, uuid.NewString()); !errors.Is(err, storeerr.ErrUnavailable) {
		t.Fatalf("expired deadline: %v, want ErrUnavailable", err)
	}
}

// Connections killed under the pool surface as ErrUnavailable (never as an
// internal error), and the store recovers without being reopened.
func TestRecoversFromKilledConnections(t *testing.T) {
	ctx := context.Background()
	s := openFresh(t, Config{MaxConns: 4})
	u := identity.User{ID: uuid.NewString(), Guest: true, Role: identity.RoleUser, CreatedAt: time.Now().UTC()}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	admin, err := s.pool.Acquire(ctx) // kept out of the pool while it kills the others
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.Release()
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	admin.Release()
	var ok bool
	for range 10 {
		_, err := s.GetUser(ctx, u.ID)
		if err == nil {
			ok = true
			break
		}
		if !errors.Is(err, storeerr.ErrUnavailable) {
			t.Fatalf("after the kill: %v, want ErrUnavailable or success", err)
		}
	}
	if !ok {
		t.Fatal("the store did not recover")
	}
}
