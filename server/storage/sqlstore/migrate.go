package sqlstore

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mathrand "math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrations ship inside the binary. migrations/ is the portable schema (both
// engines); migrations/cockroachdb/ runs on CockroachDB only, after it, and
// then the generated multi-region statements (MultiRegionDDL). Each file is
// ONE statement, run outside any explicit transaction (CockroachDB cannot
// reliably mix schema changes with other statements in one), and each must
// be safe to run twice (IF NOT EXISTS, or a statement whose second run
// changes nothing): a migration interrupted between its statement and the
// version bookkeeping is simply run again.
//
//go:embed migrations
var migrationFiles embed.FS

const (
	portableDir          = "migrations"
	cockroachDir         = "migrations/cockroachdb"
	portableVersionTable = "schema_migrations"
	crdbVersionTable     = "schema_migrations_cockroachdb"
)

// MigrationFiles returns the embedded migrations: the portable ones and the
// CockroachDB-only ones (paths under migrations/ and migrations/cockroachdb/).
func MigrationFiles() fs.FS { return migrationFiles }

// Schema lease: golang-migrate's PostgreSQL drivers serialise migrators with
// pg_advisory_lock, which CockroachDB does not implement (it has no-op stubs
// for some advisory-lock functions and none for that one), so replicas
// starting together take a lease in a table instead, on both engines. The
// lease expires if its holder dies; a live holder renews it.
var (
	leaseTTL          = 30 * time.Second
	leasePollInterval = 200 * time.Millisecond
)

// Migrate applies pending migrations (for a `migrate` subcommand; Open does
// the same). Safe to run from several replicas at once.
func Migrate(ctx context.Context, cfg Config) error {
	connCfg, err := parseConfig(cfg)
	if err != nil {
		return err
	}
	engine, err := detectEngine(ctx, connCfg)
	if err != nil {
		return err
	}
	return migrateSchema(ctx, cfg, engine)
}

func migrateSchema(ctx context.Context, cfg Config, engine string) (err error) {
	poolCfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	// One connection for statements, one for the lease's heartbeat. No
	// statement timeout: a schema change on a big table may take a while.
	poolCfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return mapErr(fmt.Errorf("sqlstore: %w", err))
	}
	defer pool.Close()
	d := &db{pool: pool, engine: engine, retry: defaultRetry}

	l, err := acquireLease(ctx, pool)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := l.release(); err == nil {
			err = rerr
		}
	}()

	if err := runMigrations(ctx, d, l, portableDir, portableVersionTable); err != nil {
		return err
	}
	if engine != EngineCockroachDB {
		return nil
	}
	if err := runMigrations(ctx, d, l, cockroachDir, crdbVersionTable); err != nil {
		return err
	}
	if len(cfg.Regions) == 0 {
		return nil
	}
	var dbName string
	if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&dbName); err != nil {
		return mapErr(fmt.Errorf("sqlstore: %w", err))
	}
	steps, err := multiRegionSteps(dbName, cfg.Regions)
	if err != nil {
		return err
	}
	_, err = applyRegionSteps(ctx, pool, l, steps, func(ctx context.Context, stmt string) error {
		_, err := pool.Exec(ctx, stmt)
		return err
	})
	return err
}

// runMigrations brings one migration set up to date with golang-migrate.
func runMigrations(ctx context.Context, d *db, l *lease, dir, table string) error {
	src, err := iofs.New(migrationFiles, dir)
	if err != nil {
		return fmt.Errorf("sqlstore: migrations %s: %w", dir, err)
	}
	drv, err := newMigrateDriver(ctx, d, l, table)
	if err != nil {
		return err
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlstore", drv)
	if err != nil {
		return fmt.Errorf("sqlstore: migrations %s: %w", dir, err)
	}
	defer m.Close()
	// A database migrated by a newer release (this binary is a rollback)
	// is left alone: migrations only ever add, so the older code runs on
	// the newer schema, and golang-migrate would refuse a version it has no
	// file for.
	if v, isDirty, verr := drv.Version(); verr == nil && !isDirty && v != database.NilVersion {
		if last, ok := lastVersion(src); ok && uint(v) > last {
			return nil
		}
	}
	err = m.Up()
	var dirty migrate.ErrDirty
	if errors.As(err, &dirty) {
		// A run died between a statement and its bookkeeping (or the
		// statement failed). Every migration is safe to repeat: step back
		// one version and go again, once.
		prev := database.NilVersion
		if p, perr := src.Prev(uint(dirty.Version)); perr == nil {
			prev = int(p)
		} else if !errors.Is(perr, fs.ErrNotExist) {
			return fmt.Errorf("sqlstore: migrations %s: %w", dir, perr)
		}
		if err := m.Force(prev); err != nil {
			return fmt.Errorf("sqlstore: migrations %s: %w", dir, err)
		}
		err = m.Up()
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return mapErr(fmt.Errorf("sqlstore: migrations %s: %w", dir, err))
	}
	return nil
}

// lastVersion is the highest migration version src holds.
func lastVersion(src source.Driver) (uint, bool) {
	v, err := src.First()
	if err != nil {
		return 0, false
	}
	for {
		next, err := src.Next(v)
		if err != nil {
			return v, true
		}
		v = next
	}
}

// migrateDriver is golang-migrate's database.Driver over pgx, for both
// engines. golang-migrate's own pgx/v5 driver does not run on CockroachDB:
// it locks with pg_advisory_lock (undefined there) and records versions with
// TRUNCATE inside a transaction (a non-transactional schema change there).
// Here the lease is the lock, and versions are rewritten with DELETE+INSERT
// in a retried transaction.
type migrateDriver struct {
	ctx   context.Context
	db    *db
	lease *lease
	table string
}

var _ database.Driver = (*migrateDriver)(nil)

func newMigrateDriver(ctx context.Context, d *db, l *lease, table string) (*migrateDriver, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	_, err := d.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+quoteIdent(table)+` (version INT8 NOT NULL PRIMARY KEY, dirty BOOL NOT NULL)`)
	if err != nil {
		return nil, mapErr(fmt.Errorf("sqlstore: create %s: %w", table, err))
	}
	return &migrateDriver{ctx: ctx, db: d, lease: l, table: quoteIdent(table)}, nil
}

// Open is not used: the driver is built by newMigrateDriver.
func (m *migrateDriver) Open(string) (database.Driver, error) {
	return nil, errors.New("sqlstore: the migration driver is built by Migrate, not from a URL")
}

// Close leaves the pool to its owner.
func (m *migrateDriver) Close() error { return nil }

// Lock checks that the lease, taken before golang-migrate starts, is held.
func (m *migrateDriver) Lock() error { return m.lease.check() }

// Unlock: the lease is released by whoever took it.
func (m *migrateDriver) Unlock() error { return nil }

// Run executes one migration file through the extended protocol, which
// refuses a file holding more than one statement (the simple protocol, what
// pgx uses for a statement without arguments, would run them all in one
// implicit transaction).
func (m *migrateDriver) Run(r io.Reader) error {
	if err := m.lease.check(); err != nil {
		return err
	}
	stmt, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	conn, err := m.db.pool.Acquire(m.ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	return conn.Conn().PgConn().ExecParams(m.ctx, string(stmt), nil, nil, nil, nil).Read().Err
}

// SetVersion implements database.Driver.
func (m *migrateDriver) SetVersion(version int, dirty bool) error {
	return m.db.inTx(m.ctx, func(tx pgx.Tx) error {
		// WHERE true: CockroachDB's sql_safe_updates refuses a bare DELETE.
		if _, err := tx.Exec(m.ctx, `DELETE FROM `+m.table+` WHERE true`); err != nil {
			return err
		}
		// As golang-migrate's drivers do: a dirty "no version" is kept so a
		// failed first migration is not forgotten.
		if version >= 0 || (version == database.NilVersion && dirty) {
			_, err := tx.Exec(m.ctx, `INSERT INTO `+m.table+` (version, dirty) VALUES ($1, $2)`, version, dirty)
			return err
		}
		return nil
	})
}

// Version implements database.Driver.
func (m *migrateDriver) Version() (version int, dirty bool, err error) {
	err = m.db.pool.QueryRow(m.ctx, `SELECT version, dirty FROM `+m.table+` LIMIT 1`).Scan(&version, &dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return database.NilVersion, false, nil
	}
	return version, dirty, err
}

// Drop is refused: nothing in the platform drops its own schema.
func (m *migrateDriver) Drop() error {
	return errors.New("sqlstore: dropping the schema is not supported")
}

// lease is a held schema lease.
type lease struct {
	pool   *pgxpool.Pool
	holder string
	ttl    time.Duration
	lost   atomic.Bool
	stop   context.CancelFunc
	done   chan struct{}
}

var errLeaseLost = errors.New("sqlstore: schema lease lost (expired while migrating); not continuing")

func (l *lease) check() error {
	if l.lost.Load() {
		return errLeaseLost
	}
	return nil
}

const leaseExpiry = `now() + $2::INT8 * INTERVAL '1 millisecond'`

// acquireLease waits until this process holds the schema lease.
func acquireLease(ctx context.Context, pool *pgxpool.Pool) (*lease, error) {
	if err := createLeaseTable(ctx, pool); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	var id [8]byte
	_, _ = rand.Read(id[:])
	l := &lease{pool: pool, holder: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(id[:])), ttl: leaseTTL}
	for {
		// Insert the lease row, or take it over once its holder has let it
		// expire; zero rows affected means someone else holds it.
		tag, err := pool.Exec(ctx, `
			INSERT INTO schema_lock (id, holder, expires_at) VALUES (1, $1, `+leaseExpiry+`)
			ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE schema_lock.expires_at < now()`, l.holder, l.ttl.Milliseconds())
		if err == nil && tag.RowsAffected() == 1 {
			break
		}
		if err != nil && !retryable(err) {
			return nil, mapErr(fmt.Errorf("sqlstore: take schema lease: %w", err))
		}
		if err := sleep(ctx, leasePollInterval/2+mathrand.N(leasePollInterval)); err != nil {
			return nil, mapErr(fmt.Errorf("sqlstore: waiting for the schema lease: %w", err))
		}
	}
	hbCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop, l.done = stop, make(chan struct{})
	go l.heartbeat(hbCtx)
	return l, nil
}

// createLeaseTable creates schema_lock if needed. On PostgreSQL, replicas
// racing on CREATE TABLE IF NOT EXISTS can fail with a duplicate catalog
// entry (the table's row type or name); the table then exists, so trying
// again succeeds.
func createLeaseTable(ctx context.Context, pool *pgxpool.Pool) error {
	for attempt := 1; ; attempt++ {
		_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_lock (
			id INT8 NOT NULL PRIMARY KEY, holder TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)`)
		if err == nil {
			return nil
		}
		switch code := sqlState(err); {
		case attempt < 10 && (code == codeUniqueViolation || code == codeDuplicateTable || code == codeDuplicateObject || retryable(err)):
			if err := sleep(ctx, time.Duration(attempt)*10*time.Millisecond); err != nil {
				return mapErr(err)
			}
		default:
			return mapErr(fmt.Errorf("sqlstore: create schema_lock: %w", err))
		}
	}
}

func (l *lease) heartbeat(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tag, err := l.pool.Exec(ctx, `UPDATE schema_lock SET expires_at = `+leaseExpiry+` WHERE id = 1 AND holder = $1`,
			l.holder, l.ttl.Milliseconds())
		if err == nil && tag.RowsAffected() == 0 {
			l.lost.Store(true)
			return
		}
		// Other errors: try again at the next tick; the lease outlives a
		// couple of missed renewals.
	}
}

// release stops renewing and gives the lease up (even if ctx has ended).
func (l *lease) release() error {
	l.stop()
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := l.pool.Exec(ctx, `DELETE FROM schema_lock WHERE id = 1 AND holder = $1`, l.holder)
	if err != nil {
		return mapErr(fmt.Errorf("sqlstore: release schema lease: %w", err))
	}
	return l.check()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// applyRegionSteps runs each multi-region step whose statement differs from
// the one last recorded for it (crdb_region_ddl), and records it. Steps are
// few and each is idempotent, but re-running them at every start would
// still queue schema-change jobs for nothing. It returns the statements run.
func applyRegionSteps(ctx context.Context, pool *pgxpool.Pool, l *lease, steps []ddlStep, exec func(context.Context, string) error) ([]string, error) {
	var ran []string
	for _, st := range steps {
		var applied string
		err := pool.QueryRow(ctx, `SELECT stmt FROM crdb_region_ddl WHERE step = $1`, st.step).Scan(&applied)
		switch {
		case err == nil && applied == st.stmt:
			continue
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return ran, mapErr(fmt.Errorf("sqlstore: read crdb_region_ddl: %w", err))
		}
		if err := l.check(); err != nil {
			return ran, err
		}
		if err := exec(ctx, st.stmt); err != nil {
			return ran, mapErr(fmt.Errorf("sqlstore: %s: %w", st.stmt, err))
		}
		ran = append(ran, st.stmt)
		if _, err := pool.Exec(ctx, `
			INSERT INTO crdb_region_ddl (step, stmt, applied_at) VALUES ($1, $2, now())
			ON CONFLICT (step) DO UPDATE SET stmt = excluded.stmt, applied_at = excluded.applied_at`,
			st.step, st.stmt); err != nil {
			return ran, mapErr(fmt.Errorf("sqlstore: record %s: %w", st.step, err))
		}
	}
	return ran, nil
}
