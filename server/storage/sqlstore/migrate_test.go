package sqlstore

import (
	"context"
	"errors"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiplatform/platform/server/identity"
)

var migrationName = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.up\.sql$`)

// migrationVersions lists the versions in one embedded directory.
func migrationVersions(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		t.Fatal(err)
	}
	var versions []int
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			t.Fatalf("%s/%s: want NNNN_name.up.sql", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		versions = append(versions, v)
	}
	return versions
}

// stripComments drops -- comments and surrounding space.
func stripComments(sql string) string {
	var b strings.Builder
	for line := range strings.Lines(sql) {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i] + "\n"
		}
		b.WriteString(line)
	}
	return strings.TrimSpace(b.String())
}

// Migration files are numbered 1..n without gaps, and every portable one is
// safe to run twice (a dirty migration is re-run).
func TestMigrationFiles(t *testing.T) {
	for _, dir := range []string{portableDir, cockroachDir} {
		// Gaps are allowed (services were numbered in blocks), duplicates
		// are not. A new migration must take a number above every existing
		// one: golang-migrate never applies a file numbered below the
		// version a database is already at.
		versions := migrationVersions(t, dir)
		for i := 1; i < len(versions); i++ {
			if versions[i] <= versions[i-1] {
				t.Fatalf("%s: versions %v are not strictly increasing (duplicate number?)", dir, versions)
			}
		}
	}
	idempotent := regexp.MustCompile(`^(CREATE (TABLE|INDEX|UNIQUE INDEX) IF NOT EXISTS |ALTER TABLE \w+ ADD COLUMN IF NOT EXISTS )`)
	err := fs.WalkDir(migrationFiles, portableDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path, cockroachDir+"/") {
			return err
		}
		b, err := fs.ReadFile(migrationFiles, path)
		if err != nil {
			return err
		}
		stmt := stripComments(string(b))
		if !idempotent.MatchString(stmt) {
			t.Errorf("%s: %q... is not CREATE ... IF NOT EXISTS or ADD COLUMN IF NOT EXISTS", path, stmt[:min(40, len(stmt))])
		}
		if strings.Contains(stmt, ";") {
			t.Errorf("%s: holds a ';' (one statement per file, no terminator)", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func schemaVersion(t *testing.T, pool *pgxpool.Pool, table string) (int, bool) {
	t.Helper()
	var v int
	var dirty bool
	if err := pool.QueryRow(context.Background(), `SELECT version, dirty FROM `+table).Scan(&v, &dirty); err != nil {
		t.Fatal(err)
	}
	return v, dirty
}

func rawPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Replicas starting together all succeed and leave the schema at the latest
// version, each migration applied once.
func TestMigrateConcurrent(t *testing.T) {
	url := freshDatabaseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const replicas = 8
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Migrate(ctx, Config{URL: url})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	pool := rawPool(t, url)
	versions := migrationVersions(t, portableDir)
	if v, dirty := schemaVersion(t, pool, portableVersionTable); v != versions[len(versions)-1] || dirty {
		t.Fatalf("schema at version %d (dirty %v), want %d", v, dirty, versions[len(versions)-1])
	}
	var leases int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_lock`).Scan(&leases); err != nil || leases != 0 {
		t.Fatalf("leases left behind: %d, %v", leases, err)
	}
	for _, table := range []string{"users", "sessions", "favorites", "idempotency_keys", "shares", "short_links",
		"click_events", "click_daily", "click_dims", "elections", "candidates", "votes", "vote_counters", "vote_audit",
		"canvas_placements", "canvas_bans"} {
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || !exists {
			t.Errorf("table %s missing (%v)", table, err)
		}
	}
	// Running again changes nothing.
	if err := Migrate(ctx, Config{URL: url}); err != nil {
		t.Fatalf("second run: %v", err)
	}
}

// A migration left dirty (its statement may or may not have run) is run
// again, which its IF NOT EXISTS form makes safe.
// A rolled-back binary starts on a schema a newer release migrated
// further: migrations only add, so the older code runs on it.
func TestMigrateAcceptsNewerSchema(t *testing.T) {
	url := freshDatabaseURL(t)
	ctx := context.Background()
	if err := Migrate(ctx, Config{URL: url}); err != nil {
		t.Fatal(err)
	}
	pool := rawPool(t, url)
	versions := migrationVersions(t, portableDir)
	newer := versions[len(versions)-1] + 1000
	if _, err := pool.Exec(ctx, `UPDATE schema_migrations SET version = $1, dirty = false`, newer); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, Config{URL: url}); err != nil {
		t.Fatalf("migrate on a newer schema: %v", err)
	}
	if v, dirty := schemaVersion(t, pool, portableVersionTable); v != newer || dirty {
		t.Fatalf("schema version %d (dirty %v) changed, want %d untouched", v, dirty, newer)
	}
}

func TestMigrateRecoversDirtyVersion(t *testing.T) {
	url := freshDatabaseURL(t)
	ctx := context.Background()
	if err := Migrate(ctx, Config{URL: url}); err != nil {
		t.Fatal(err)
	}
	pool := rawPool(t, url)
	versions := migrationVersions(t, portableDir)
	latest := versions[len(versions)-1]
	if _, err := pool.Exec(ctx, `UPDATE schema_migrations SET version = $1, dirty = true`, latest); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, Config{URL: url}); err != nil {
		t.Fatalf("dirty at the last version: %v", err)
	}
	if v, dirty := schemaVersion(t, pool, portableVersionTable); v != latest || dirty {
		t.Fatalf("version %d dirty %v, want %d clean", v, dirty, latest)
	}
	// Dirty at the very first version: back to "none" and up again.
	if _, err := pool.Exec(ctx, `UPDATE schema_migrations SET version = 1, dirty = true`); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, Config{URL: url}); err != nil {
		t.Fatalf("dirty at the first version: %v", err)
	}
	if v, dirty := schemaVersion(t, pool, portableVersionTable); v != latest || dirty {
		t.Fatalf("version %d dirty %v, want %d clean", v, dirty, latest)
	}
}

// A lease left by a dead migrator is taken over once it expires; a live one
// is waited for.
func TestSchemaLease(t *testing.T) {
	url := freshDatabaseURL(t)
	ctx := context.Background()
	pool := rawPool(t, url)
	if err := createLeaseTable(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO schema_lock VALUES (1, 'dead', now() - INTERVAL '1 second')`); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, Config{URL: url}); err != nil {
		t.Fatalf("with an expired lease: %v", err)
	}

	if _, err := pool.Exec(ctx, `INSERT INTO schema_lock VALUES (1, 'alive', now() + INTERVAL '1 minute')`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Migrate(ctx, Config{URL: url}) }()
	select {
	case err := <-done:
		t.Fatalf("Migrate did not wait for a held lease: %v", err)
	case <-time.After(time.Second):
	}
	if _, err := pool.Exec(ctx, `DELETE FROM schema_lock WHERE holder = 'alive'`); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Migrate did not take the released lease")
	}

	// A cancelled wait gives up.
	if _, err := pool.Exec(ctx, `INSERT INTO schema_lock VALUES (1, 'alive', now() + INTERVAL '1 minute')`); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := Migrate(cctx, Config{URL: url}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past the deadline: %v", err)
	}
}

// The holder renews its lease, and notices when it has lost it.
func TestSchemaLeaseRenewalAndLoss(t *testing.T) {
	defer func(ttl time.Duration) { leaseTTL = ttl }(leaseTTL)
	leaseTTL = 300 * time.Millisecond
	ctx := context.Background()
	pool := rawPool(t, freshDatabaseURL(t))
	l, err := acquireLease(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * leaseTTL)
	var live bool
	if err := pool.QueryRow(ctx, `SELECT expires_at > now() AND holder = $1 FROM schema_lock`, l.holder).Scan(&live); err != nil || !live {
		t.Fatalf("lease not renewed: %v %v", live, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE schema_lock SET holder = 'thief'`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.check() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(l.check(), errLeaseLost) {
		t.Fatal("a stolen lease went unnoticed")
	}
	if err := l.release(); !errors.Is(err, errLeaseLost) {
		t.Fatalf("release of a lost lease: %v", err)
	}
	var holder string
	if err := pool.QueryRow(ctx, `SELECT holder FROM schema_lock`).Scan(&holder); err != nil || holder != "thief" {
		t.Fatalf("release removed someone else's lease: %q %v", holder, err)
	}
}

// A migration file holding two statements is refused as a whole.
func TestMigrationRunRefusesTwoStatements(t *testing.T) {
	ctx := context.Background()
	pool := rawPool(t, freshDatabaseURL(t))
	l, err := acquireLease(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	drv, err := newMigrateDriver(ctx, &db{pool: pool, engine: EnginePostgreSQL, retry: defaultRetry}, l, "test_versions")
	if err != nil {
		t.Fatal(err)
	}
	if err := drv.Run(strings.NewReader("CREATE TABLE one (x INT); CREATE TABLE two (x INT)")); err == nil {
		t.Fatal("two statements ran")
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('one') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Fatalf("half of a refused file ran: %v %v", exists, err)
	}
	// The driver's bookkeeping.
	if v, dirty, err := drv.Version(); err != nil || v != -1 || dirty {
		t.Fatalf("empty Version() = %d %v %v", v, dirty, err)
	}
	if err := drv.SetVersion(7, true); err != nil {
		t.Fatal(err)
	}
	if err := drv.SetVersion(8, false); err != nil {
		t.Fatal(err)
	}
	if v, dirty, err := drv.Version(); err != nil || v != 8 || dirty {
		t.Fatalf("Version() = %d %v %v, want 8 clean", v, dirty, err)
	}
	if err := drv.Drop(); err == nil {
		t.Fatal("Drop succeeded")
	}
}

// The bookkeeping of generated multi-region statements: a step runs when
// its statement is new or changed, never twice. (The statements themselves
// are CockroachDB-only, so they are recorded here instead of run.)
func TestApplyRegionSteps(t *testing.T) {
	ctx := context.Background()
	pool := rawPool(t, freshDatabaseURL(t))
	ddl, err := fs.ReadFile(migrationFiles, cockroachDir+"/0001_region_ddl.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, string(ddl)); err != nil {
		t.Fatal(err)
	}
	l, err := acquireLease(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	apply := func(regions ...string) []string {
		t.Helper()
		steps, err := multiRegionSteps("platform", regions)
		if err != nil {
			t.Fatal(err)
		}
		ran, err := applyRegionSteps(ctx, pool, l, steps, func(context.Context, string) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		return ran
	}
	all, _ := MultiRegionDDL("platform", []string{"us-east1"})
	if ran := apply("us-east1"); !slices.Equal(ran, all) {
		t.Fatalf("first run ran %q, want everything", ran)
	}
	if ran := apply("us-east1"); len(ran) != 0 {
		t.Fatalf("unchanged regions ran %q", ran)
	}
	if ran := apply("us-east1", "europe-west1"); !slices.Equal(ran, []string{`ALTER DATABASE "platform" ADD REGION IF NOT EXISTS "europe-west1"`}) {
		t.Fatalf("adding a second region ran %q", ran)
	}
	if ran := apply("us-east1", "europe-west1", "asia-east1"); !slices.Equal(ran, []string{
		`ALTER DATABASE "platform" ADD REGION IF NOT EXISTS "asia-east1"`,
		`ALTER DATABASE "platform" SURVIVE REGION FAILURE`,
	}) {
		t.Fatalf("adding a third region ran %q", ran)
	}
	if ran := apply("us-east1", "europe-west1"); !slices.Equal(ran, []string{`ALTER DATABASE "platform" SURVIVE ZONE FAILURE`}) {
		t.Fatalf("going back to two regions ran %q", ran)
	}
	// A failing statement is not recorded, so it runs again next time.
	steps, _ := multiRegionSteps("platform", []string{"us-west1"})
	boom := errors.New("boom")
	if _, err := applyRegionSteps(ctx, pool, l, steps, func(context.Context, string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing step: %v", err)
	}
	if ran := apply("us-west1"); len(ran) != 1 || !strings.Contains(ran[0], "PRIMARY REGION") {
		t.Fatalf("after a failure ran %q, want the primary region step", ran)
	}
}

// The schema's constraints hold on PostgreSQL, for the tables of services
// that do not use them yet too.
func TestSchemaConstraints(t *testing.T) {
	s := openFresh(t, Config{})
	ctx := context.Background()
	exec := func(sql string, args ...any) error {
		_, err := s.pool.Exec(ctx, sql, args...)
		return err
	}
	wantCode := func(err error, code, what string) {
		t.Helper()
		if got := sqlState(err); got != code {
			t.Errorf("%s: %v (SQLSTATE %q), want SQLSTATE %s", what, err, got, code)
		}
	}
	election, candidate, user, admin := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(exec(`INSERT INTO elections (id, title, home_region, opens_at, closes_at, created_by)
		VALUES ($1, 'best colour', 'us-east1', now(), now() + INTERVAL '1 hour', $2)`, election, admin))
	must(exec(`INSERT INTO candidates (election_id, id, name) VALUES ($1, $2, 'red')`, election, candidate))
	vote := `INSERT INTO votes (home_region, election_id, user_id, candidate_id) VALUES ($1, $2, $3, $4)`
	must(exec(vote, "us-east1", election, user, candidate))
	wantCode(exec(vote, "us-east1", election, user, candidate), codeUniqueViolation, "second vote")
	wantCode(exec(vote, "europe-west1", election, user, candidate), codeForeignKeyViolation, "vote outside the election's home region")
	wantCode(exec(vote, "us-east1", election, uuid.NewString(), uuid.NewString()), codeForeignKeyViolation, "vote for a stranger")
	must(exec(`INSERT INTO vote_counters (home_region, election_id, candidate_id, shard, votes) VALUES ('us-east1', $1, $2, 3, 1)
		ON CONFLICT (home_region, election_id, candidate_id, shard) DO UPDATE SET votes = vote_counters.votes + 1`, election, candidate))
	must(exec(`INSERT INTO vote_audit (home_region, election_id, user_id, candidate_id, client_addr) VALUES ('us-east1', $1, $2, $3, '192.0.2.1')`,
		election, user, candidate))
	wantCode(exec(`INSERT INTO elections (id, title, opens_at, closes_at, created_by) VALUES ($1, 'x', now(), now(), $2)`,
		uuid.NewString(), admin), "23514", "empty voting window")

	link := `INSERT INTO short_links (code, target, redirect_kind) VALUES ($1, 'https://example.com/', $2)`
	must(exec(link, "abc1234", 301))
	wantCode(exec(link, "abc1234", 301), codeUniqueViolation, "taken code")
	wantCode(exec(link, strings.Repeat("a", 33), 302), "23514", "code longer than 32")
	wantCode(exec(link, "xyz", 307), "23514", "unknown redirect kind")
	must(exec(`INSERT INTO click_events (region, clicked_at, code, country) VALUES ('us-east1', now(), 'abc1234', 'DE')`))
	must(exec(`INSERT INTO click_daily (code, click_date, country, bot, region, clicks) VALUES ('abc1234', current_date, 'DE', false, 'us-east1', 1)
		ON CONFLICT (code, click_date, country, bot, region) DO UPDATE SET clicks = click_daily.clicks + excluded.clicks`))

	place := `INSERT INTO canvas_placements (seq, x, y, color, user_id) VALUES ($1, $2, $3, $4, $5)`
	must(exec(place, 1, 10, 20, 15, user))
	wantCode(exec(place, 1, 0, 0, 1, user), codeUniqueViolation, "reused seq")
	wantCode(exec(place, 2, 0, 0, 16, user), "23514", "colour outside the palette")
	wantCode(exec(place, 3, -1, 0, 1, user), "23514", "negative coordinate")
	must(exec(`INSERT INTO canvas_bans (user_id, banned_by, reason) VALUES ($1, $2, 'spam')`, user, admin))

	wantCode(exec(`INSERT INTO favorites (user_id, hex, color_space, color_value, updated_at) VALUES ($1, '#ff0000', 'hex', 'x', now())`,
		user), "23514", "lower-case hex")
	wantCode(exec(`INSERT INTO shares (slug, owner_id, snapshot) VALUES ('s1', $1, true)`, user), "23514", "snapshot without a colour")
	wantCode(exec(`INSERT INTO users (id, guest, role) VALUES ($1, true, 'root')`, user), "23514", "unknown role")

	// The store refuses ids that are not UUIDs before they reach SQL.
	if err := s.CreateUser(ctx, identity.User{ID: "not-a-uuid", Guest: true, Role: identity.RoleUser}); err == nil || !strings.Contains(err.Error(), "not a UUID") {
		t.Errorf("CreateUser with a malformed id: %v", err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM votes`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("votes = %d, %v", n, err)
	}
}
