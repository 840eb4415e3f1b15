package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/apiplatform/platform/server/vote"
)

// TestMain runs main itself when asked to, so a test can start this very
// binary with its own environment and read its exit status and stderr.
func TestMain(m *testing.M) {
	if os.Getenv("PLATFORM_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"server"}, strings.Fields(os.Getenv("PLATFORM_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBadEnvRefusedAtStart starts the binary with a bad environment value and
// wants it to exit non-zero, naming the variable and the value, before
// opening any store or listener.
func TestBadEnvRefusedAtStart(t *testing.T) {
	// Should the value ever be accepted the child would serve on; it is
	// killed at the test's deadline so the test fails rather than hangs.
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-5*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PLATFORM_TEST_RUN_MAIN=1", "PLATFORM_TEST_ARGS=serve --http-addr= --metrics-addr= --grpc-addr 127.0.0.1:0 --data-dir "+t.TempDir(),
		"CANVAS_COOLDOWN=abc")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("run = %v, want a non-zero exit; stderr: %s", err, stderr.String())
	}
	for _, want := range []string{"CANVAS_COOLDOWN", "abc", "--canvas-cooldown"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q does not name %q", stderr.String(), want)
		}
	}
}

// TestBadEnvRefused runs each command's flag parsing with one bad environment
// value and wants an error naming the variable and the value.
func TestBadEnvRefused(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []struct {
		cmd      string
		run      func(context.Context, *slog.Logger, []string) error
		env, val string
	}{
		{"serve", serve, "CANVAS_COOLDOWN", "abc"},
		{"serve", serve, "DB_MAX_CONNS", "-x"},
		{"serve", serve, "CANVAS_WIDTH", "wide"},
		{"serve", serve, "REQUEST_TIMEOUT", "15"},
		{"serve", serve, "SECURE_COOKIES", "yes"},
		{"serve", serve, "SHORTENER_MAX_IN_FLIGHT", "many"},
		{"serve", serve, "VOTE_MAX_BATCH", "-1"},
		{"serve", serve, "VOTE_USER_LIMIT", "10 a minute"},
		{"migrate", migrate, "DB_STATEMENT_TIMEOUT", "soon"},
		{"gateway", runGateway, "SECURE_COOKIES", "maybe"},
	}
	// A cancelled context: should a bad value ever be accepted, serve
	// stops at once instead of running, and the test fails on its nil error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range cases {
		t.Run(c.cmd+"/"+c.env, func(t *testing.T) {
			t.Setenv(c.env, c.val)
			var args []string
			if c.cmd == "serve" {
				args = []string{"--data-dir", t.TempDir(), "--http-addr", "", "--grpc-addr", "127.0.0.1:0", "--metrics-addr", ""}
			}
			err := c.run(ctx, log, args)
			if err == nil {
				t.Fatalf("%s with %s=%q: no error", c.cmd, c.env, c.val)
			}
			for _, want := range []string{c.env, `"` + c.val + `"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
		})
	}
}

// TestGoodEnvAccepted proves the refusal is about the value: the same
// variables with good values get past flag parsing (migrate then stops for
// want of a database URL).
func TestGoodEnvAccepted(t *testing.T) {
	for env, val := range map[string]string{"DB_MAX_CONNS": "8", "DB_STATEMENT_TIMEOUT": "2s", "DB_MAX_CONN_LIFETIME": ""} {
		t.Setenv(env, val)
	}
	err := migrate(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), "--database-url is required") {
		t.Fatalf("migrate = %v, want only the missing --database-url refused", err)
	}
}

// TestVoteFlagDefaults wants the vote flags, left unset, to give
// vote.DefaultConfig's values, and an environment value to override one.
func TestVoteFlagDefaults(t *testing.T) {
	t.Setenv("VOTE_COMMITTERS", "7")
	fs := newFlags("t")
	var got vote.Config
	voteFlags(fs, &got)
	if err := fs.parse(nil); err != nil {
		t.Fatal(err)
	}
	d := vote.DefaultConfig()
	d.Committers = 7
	if got.MaxBatch != d.MaxBatch || got.MaxWait != d.MaxWait || got.Committers != d.Committers ||
		got.CounterShards != d.CounterShards || got.UserLimit != d.UserLimit || got.AddrLimit != d.AddrLimit ||
		got.MinAccountAge != d.MinAccountAge || got.MaxAccountsPerAddr != d.MaxAccountsPerAddr ||
		got.AccountsWindow != d.AccountsWindow || got.CaptchaURL != d.CaptchaURL ||
		got.CaptchaSecret != d.CaptchaSecret || got.CaptchaTimeout != d.CaptchaTimeout {
		t.Fatalf("vote flags = %+v, want vote.DefaultConfig with Committers 7 (%+v)", got, d)
	}
}

// Safe defaults: a separate gateway does not start without a secret, and
// the admin password is never taken from the command line (where ps shows
// it) but from a file or the environment.
func TestEdgeSafeDefaults(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // should a command ever start, it stops at once
	t.Setenv("GATEWAY_SECRET", "")
	if err := runGateway(ctx, log, []string{"--http-addr", "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "--gateway-secret is required") {
		t.Fatalf("gateway without a secret: %v, want it refused", err)
	}
	err := serve(ctx, log, []string{"--data-dir", t.TempDir(), "--http-addr", "", "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "", "--admin-password", "hunter22"})
	if err == nil || !strings.Contains(err.Error(), "admin-password") {
		t.Fatalf("--admin-password on the command line: %v, want it refused", err)
	}

	t.Setenv("ADMIN_PASSWORD", "from-env")
	file := t.TempDir() + "/pw"
	if err := os.WriteFile(file, []byte("from-file-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw, err := adminPassword(file); err != nil || pw != "from-file-1" {
		t.Fatalf("password file: %q, %v", pw, err)
	}
	if pw, err := adminPassword(""); err != nil || pw != "from-env" {
		t.Fatalf("password from the environment: %q, %v", pw, err)
	}
	if err := os.WriteFile(file, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := adminPassword(file); err == nil {
		t.Fatal("an empty password file was accepted")
	}
	if _, err := adminPassword(file + ".missing"); err == nil {
		t.Fatal("a missing password file was accepted")
	}
}
