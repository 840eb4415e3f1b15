// Package sqlstore is the production store: PostgreSQL or CockroachDB over
// pgx v5, one implementation for both (same wire protocol, a portable
// schema). The engine is detected at connect; CockroachDB additionally gets
// its multi-region layout (MultiRegionDDL) and hash-sharded keys.
//
// Every transaction runs at SERIALIZABLE (the session default on both
// engines) and is re-run transparently when it loses a
// serialization conflict (see inTx). Errors are the storage package's:
// ErrNotFound, ErrConflict, ErrIdempotencyMismatch, and ErrUnavailable for
// a database that cannot be reached or does not answer in time.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/share"
	"github.com/apiplatform/platform/server/storage"
)

// Engines, as Engine reports them.
const (
	EnginePostgreSQL  = "postgresql"
	EngineCockroachDB = "cockroachdb"
)

// Config selects and tunes the database.
type Config struct {
	// URL is a postgres:// or postgresql:// connection string.
	URL string
	// MaxConns caps the pool (0: pgx's default, max(4, CPUs)).
	MaxConns int32
	// MaxConnLifetime recycles connections (0: pgx's default, one hour), so
	// load spreads onto nodes added behind a load balancer.
	MaxConnLifetime time.Duration
	// StatementTimeout bounds every statement server-side (0: none). Callers'
	// context deadlines apply as well.
	StatementTimeout time.Duration
	// Region is the region this server runs in; when Regions is set it must
	// be one of them.
	Region string
	// Regions are the database regions of a multi-region CockroachDB
	// deployment, primary first. Ignored on PostgreSQL.
	Regions []string
	// Tracing adds a span for every query, under the request's trace (off:
	// no tracer at all, which costs nothing per query).
	Tracing bool
}

// Store is the SQL storage engine (PostgreSQL or CockroachDB): every
// service's store.
type Store struct{ db }

var _ storage.Engine = (*Store)(nil)

// db is a pool and how to run transactions on it.
type db struct {
	pool   *pgxpool.Pool
	engine string
	retry  retryPolicy
}

var (
	_ identity.Store = (*Store)(nil)
	_ favorite.Store = (*Store)(nil)
	_ share.Store    = (*Store)(nil)
)

// Open connects, detects the engine, applies pending migrations and returns
// a store over a connection pool.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	connCfg, err := parseConfig(cfg)
	if err != nil {
		return nil, err
	}
	engine, err := detectEngine(ctx, connCfg)
	if err != nil {
		return nil, err
	}
	if err := migrateSchema(ctx, cfg, engine); err != nil {
		return nil, err
	}
	poolCfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	if cfg.MaxConns > 0 {
		poolCfg.MaxConns = cfg.MaxConns
	}
	if cfg.MaxConnLifetime > 0 {
		poolCfg.MaxConnLifetime = cfg.MaxConnLifetime
		poolCfg.MaxConnLifetimeJitter = cfg.MaxConnLifetime / 10
	}
	params := poolCfg.ConnConfig.RuntimeParams
	if cfg.StatementTimeout > 0 {
		params["statement_timeout"] = strconv.FormatInt(max(cfg.StatementTimeout.Milliseconds(), 1), 10)
	}
	// Single statements too, so that no write escapes serializability
	// (PostgreSQL defaults to READ COMMITTED; a CockroachDB cluster may have
	// been told to).
	params["default_transaction_isolation"] = "serializable"
	if cfg.Tracing {
		poolCfg.ConnConfig.Tracer = otelpgx.NewTracer()
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, mapErr(fmt.Errorf("sqlstore: %w", err))
	}
	return &Store{db{pool: pool, engine: engine, retry: defaultRetry}}, nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Engine reports EnginePostgreSQL or EngineCockroachDB.
func (s *Store) Engine() string { return s.engine }

// asOf is the AS OF SYSTEM TIME clause of a read that may be stale (see
// storeerr.WithStaleReads): a follower read on CockroachDB, served by the
// closest replica about 4.8s in the past; nothing elsewhere. It goes right
// after the table name.
func (s *Store) asOf(ctx context.Context) string {
	if s.engine == EngineCockroachDB && storeerr.StaleReadsOK(ctx) {
		return " AS OF SYSTEM TIME follower_read_timestamp()"
	}
	return ""
}

// Ping checks that the database answers (health checks).
func (s *Store) Ping(ctx context.Context) error {
	return mapErr(s.pool.Ping(ctx))
}

// parseConfig validates cfg and returns the connection settings for the
// short-lived connections of engine detection and migrations.
func parseConfig(cfg Config) (*pgx.ConnConfig, error) {
	if !strings.HasPrefix(cfg.URL, "postgres://") && !strings.HasPrefix(cfg.URL, "postgresql://") {
		return nil, errors.New("sqlstore: database URL must start with postgres:// or postgresql://")
	}
	if cfg.MaxConns < 0 || cfg.MaxConnLifetime < 0 || cfg.StatementTimeout < 0 {
		return nil, errors.New("sqlstore: pool size, connection lifetime and statement timeout must not be negative")
	}
	if len(cfg.Regions) > 0 {
		if err := ValidateRegions(cfg.Regions); err != nil {
			return nil, err
		}
		if cfg.Region != "" && !slices.Contains(cfg.Regions, cfg.Region) {
			return nil, fmt.Errorf("sqlstore: region %q is not one of the database regions %v", cfg.Region, cfg.Regions)
		}
	}
	connCfg, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	return connCfg, nil
}

// detectEngine asks the server what it is.
func detectEngine(ctx context.Context, connCfg *pgx.ConnConfig) (string, error) {
	conn, err := pgx.ConnectConfig(ctx, connCfg)
	if err != nil {
		return "", mapErr(fmt.Errorf("sqlstore: connect: %w", err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return "", mapErr(fmt.Errorf("sqlstore: detect engine: %w", err))
	}
	return engineOf(version), nil
}

// engineOf maps a version() string to an engine: CockroachDB answers with
// e.g. "CockroachDB CCL v24.1.0 (x86_64-pc-linux-gnu, ...)".
func engineOf(version string) string {
	if strings.Contains(version, "CockroachDB") {
		return EngineCockroachDB
	}
	return EnginePostgreSQL
}
