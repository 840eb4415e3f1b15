package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/shortener"
)

// shortCodeSeqName is the row of short_code_seq behind generated codes.
const shortCodeSeqName = "codes"

// CodeKey implements shortener.Store. Replicas starting at once may each
// try to create the key; ON CONFLICT keeps the first, and all read it back.
func (s *Store) CodeKey(ctx context.Context) (key []byte, err error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO short_code_seq (name, next_id, code_key) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING`,
			shortCodeSeqName, fresh); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT code_key FROM short_code_seq WHERE name = $1`, shortCodeSeqName).Scan(&key)
	})
	return key, mapErr(err)
}

// ReserveIDs implements shortener.Store: one UPDATE per block, so the
// counter row is written once per IDBlock links.
func (s *Store) ReserveIDs(ctx context.Context, n int) (first uint64, err error) {
	if n <= 0 {
		return 0, errors.New("sqlstore: reserve at least one id")
	}
	var next int64
	err = s.do(ctx, func() error {
		return s.pool.QueryRow(ctx, `UPDATE short_code_seq SET next_id = next_id + $2 WHERE name = $1 RETURNING next_id`,
			shortCodeSeqName, int64(n)).Scan(&next)
	})
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("sqlstore: code counter missing (CodeKey creates it): %w", storeerr.ErrNotFound)
		}
		return 0, mapErr(err)
	}
	return uint64(next - int64(n)), nil
}

// CreateLinks implements shortener.Store: one INSERT for the whole batch;
// ON CONFLICT DO NOTHING skips taken codes and RETURNING says which rows
// went in.
func (s *Store) CreateLinks(ctx context.Context, links []shortener.Link) (created []bool, err error) {
	n := len(links)
	codes, owners, targets := make([]string, n), make([]*string, n), make([]string, n)
	custom, kinds := make([]bool, n), make([]int16, n)
	createdAt, expires, hashes := make([]time.Time, n), make([]*time.Time, n), make([]*string, n)
	maxVisits, devices := make([]*int64, n), make([]*string, n)
	for i, l := range links {
		if l.MaxVisits > 0 {
			m := l.MaxVisits
			maxVisits[i] = &m
		}
		if len(l.DeviceTargets) > 0 {
			b, err := json.Marshal(l.DeviceTargets)
			if err != nil {
				return nil, err
			}
			d := string(b)
			devices[i] = &d
		}
		if l.OwnerID != "" {
			if err := requireUUID("owner id", l.OwnerID); err != nil {
				return nil, err
			}
			owner := l.OwnerID
			owners[i] = &owner
		}
		codes[i], targets[i], custom[i], kinds[i], createdAt[i] = l.Code, l.Target, l.Custom, int16(l.Kind), l.CreatedAt
		if !l.ExpiresAt.IsZero() {
			t := l.ExpiresAt
			expires[i] = &t
		}
		if l.PasswordHash != "" {
			h := l.PasswordHash
			hashes[i] = &h
		}
	}
	err = s.do(ctx, func() error {
		created = make([]bool, n)
		rows, err := s.pool.Query(ctx, `
			INSERT INTO short_links (code, owner_id, target, custom, created_at, expires_at, password_hash, redirect_kind, max_visits, device_targets)
			SELECT t.code, t.owner, t.target, t.custom, t.created, t.expires, t.hash, t.kind, t.max_visits, t.devices::JSONB
			FROM unnest($1::TEXT[], $2::UUID[], $3::TEXT[], $4::BOOL[], $5::TIMESTAMPTZ[], $6::TIMESTAMPTZ[], $7::TEXT[], $8::INT2[], $9::INT8[], $10::TEXT[])
				AS t (code, owner, target, custom, created, expires, hash, kind, max_visits, devices)
			ON CONFLICT (code) DO NOTHING
			RETURNING code`, codes, owners, targets, custom, createdAt, expires, hashes, kinds, maxVisits, devices)
		if err != nil {
			return err
		}
		in, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		inserted := make(map[string]bool, len(in))
		for _, c := range in {
			inserted[c] = true
		}
		// A code listed twice went in at most once: the first item gets it.
		for i, c := range codes {
			if inserted[c] {
				created[i] = true
				delete(inserted, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return created, nil
}

const shortLinkColumns = `code, COALESCE(owner_id::TEXT, ''), target, custom, created_at, expires_at, COALESCE(password_hash, ''),
	redirect_kind, click_count, last_access_at, deleted_at, bot_click_count, last_human_access_at,
	COALESCE(max_visits, 0), visit_count, device_targets::TEXT`

func scanShortLink(row pgx.Row) (shortener.Link, error) {
	var l shortener.Link
	var kind int16
	var expires, last, deleted, lastHuman *time.Time
	var devices *string
	if err := row.Scan(&l.Code, &l.OwnerID, &l.Target, &l.Custom, &l.CreatedAt, &expires, &l.PasswordHash,
		&kind, &l.Clicks, &last, &deleted, &l.BotClicks, &lastHuman, &l.MaxVisits, &l.Visits, &devices); err != nil {
		return shortener.Link{}, err
	}
	if devices != nil {
		if err := json.Unmarshal([]byte(*devices), &l.DeviceTargets); err != nil {
			return shortener.Link{}, err
		}
		if len(l.DeviceTargets) == 0 {
			l.DeviceTargets = nil
		}
	}
	l.Kind = int(kind)
	l.CreatedAt = l.CreatedAt.UTC()
	l.ExpiresAt, l.LastAccessAt, l.DeletedAt, l.LastHumanAt = timeOf(expires), timeOf(last), timeOf(deleted), timeOf(lastHuman)
	return l, nil
}

// GetLink implements shortener.Store.
func (s *Store) GetLink(ctx context.Context, code string) (l shortener.Link, err error) {
	err = s.do(ctx, func() (err error) {
		l, err = scanShortLink(s.pool.QueryRow(ctx, `SELECT `+shortLinkColumns+` FROM short_links`+s.asOf(ctx)+` WHERE code = $1`, code))
		return err
	})
	return l, mapErr(err)
}

// ListLinks implements shortener.Store: a keyset page over the owner index.
// A search filters the owner's rows as the index yields them (strpos, not
// LIKE, so the text needs no escaping); one owner's links are few enough
// for that.
func (s *Store) ListLinks(ctx context.Context, ownerID, search string, after *shortener.Cursor, limit int) (out []shortener.Link, err error) {
	if !isUUID(ownerID) || limit <= 0 {
		return nil, nil
	}
	query := `SELECT ` + shortLinkColumns + ` FROM short_links WHERE owner_id = $1 AND deleted_at IS NULL`
	args := []any{ownerID, limit}
	if search != "" {
		args = append(args, strings.ToLower(search))
		n := fmt.Sprint(len(args))
		query += ` AND (strpos(lower(code), $` + n + `::TEXT) > 0 OR strpos(lower(target), $` + n + `::TEXT) > 0)`
	}
	if after != nil {
		args = append(args, after.CreatedAt, after.Code)
		query += fmt.Sprintf(` AND (created_at, code) < ($%d::TIMESTAMPTZ, $%d::TEXT)`, len(args)-1, len(args))
	}
	query += ` ORDER BY created_at DESC, code DESC LIMIT $2`
	err = s.do(ctx, func() error {
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (shortener.Link, error) { return scanShortLink(r) })
		return err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// shortLiveOrGone turns "no row updated" into ErrNotFound or ErrDeleted.
func (s *Store) shortLiveOrGone(ctx context.Context, code string) error {
	l, err := s.GetLink(ctx, code)
	if err != nil {
		return err
	}
	if !l.DeletedAt.IsZero() {
		return shortener.ErrDeleted
	}
	return storeerr.ErrNotFound // deleted and gone since: cannot happen, tombstones stay
}

// UpdateLink implements shortener.Store.
func (s *Store) UpdateLink(ctx context.Context, code string, u shortener.LinkUpdate) (l shortener.Link, err error) {
	var expires *time.Time
	if u.ExpiresAt != nil && !u.ExpiresAt.IsZero() {
		expires = u.ExpiresAt
	}
	var hash *string
	if u.PasswordHash != nil && *u.PasswordHash != "" {
		hash = u.PasswordHash
	}
	var kind int16
	if u.Kind != nil {
		kind = int16(*u.Kind)
	}
	var maxVisits *int64
	if u.MaxVisits != nil && *u.MaxVisits > 0 {
		maxVisits = u.MaxVisits
	}
	// Device targets merge in SQL: set ones are added (||), emptied ones
	// removed (- key, one key at a time: both engines have that operator;
	// "" is no key), and an object left empty becomes NULL.
	set, unset := map[string]string{}, make([]string, 0, len(shortener.DeviceClasses))
	for k, v := range u.DeviceTargets {
		if v == "" {
			unset = append(unset, k)
		} else {
			set[k] = v
		}
	}
	if len(unset) > len(shortener.DeviceClasses) {
		return shortener.Link{}, errors.New("sqlstore: unknown device class")
	}
	for len(unset) < len(shortener.DeviceClasses) {
		unset = append(unset, "")
	}
	setJSON, err := json.Marshal(set)
	if err != nil {
		return shortener.Link{}, err
	}
	err = s.do(ctx, func() (err error) {
		l, err = scanShortLink(s.pool.QueryRow(ctx, `
			UPDATE short_links SET
				target = CASE WHEN $2 THEN $3 ELSE target END,
				expires_at = CASE WHEN $4 THEN $5 ELSE expires_at END,
				password_hash = CASE WHEN $6 THEN $7 ELSE password_hash END,
				redirect_kind = CASE WHEN $8 THEN $9::INT2 ELSE redirect_kind END,
				max_visits = CASE WHEN $10 THEN $11::INT8 ELSE max_visits END,
				device_targets = CASE WHEN $12 THEN NULLIF((COALESCE(device_targets, '{}'::JSONB) || $13::TEXT::JSONB) - $14::TEXT - $15::TEXT - $16::TEXT, '{}'::JSONB)
					ELSE device_targets END
			WHERE code = $1 AND deleted_at IS NULL
			RETURNING `+shortLinkColumns,
			code, u.Target != nil, shortDeref(u.Target), u.ExpiresAt != nil, expires, u.PasswordHash != nil, hash, u.Kind != nil, kind,
			u.MaxVisits != nil, maxVisits, len(u.DeviceTargets) > 0, string(setJSON), unset[0], unset[1], unset[2]))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return shortener.Link{}, s.shortLiveOrGone(ctx, code)
	}
	return l, mapErr(err)
}

// TakeVisit implements shortener.Store: one conditional UPDATE. Under
// READ COMMITTED (PostgreSQL) concurrent updates of the row wait for each
// other and re-check the condition on the row they then see; under
// SERIALIZABLE (CockroachDB) a conflict retries. Either way no visit is
// counted twice.
func (s *Store) TakeVisit(ctx context.Context, code string) (taken bool, err error) {
	err = s.do(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `
			UPDATE short_links SET visit_count = GREATEST(visit_count, click_count) + 1
			WHERE code = $1 AND deleted_at IS NULL AND max_visits IS NOT NULL AND GREATEST(visit_count, click_count) < max_visits`, code)
		taken = tag.RowsAffected() == 1
		return err
	})
	return taken, mapErr(err)
}

// shortDay is t's UTC day as a midnight the date codec encodes as is
// (no session time zone involved).
func shortDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func shortDeref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// DeleteLink implements shortener.Store.
func (s *Store) DeleteLink(ctx context.Context, code string, at time.Time) error {
	var n int64
	err := s.do(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `UPDATE short_links SET deleted_at = $2 WHERE code = $1 AND deleted_at IS NULL`, code, at)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return s.shortLiveOrGone(ctx, code)
	}
	return nil
}

// RecordClicks implements shortener.Store, in one transaction: the raw
// events, the daily aggregates (upserted, this region's rows only) and the
// links' counters. Rows are touched in key order (Rollup sorts), so
// concurrent flushers of several replicas cannot deadlock; a serialization
// conflict re-runs the whole transaction.
func (s *Store) RecordClicks(ctx context.Context, region string, clicks []shortener.Click) error {
	if len(clicks) == 0 {
		return nil
	}
	n := len(clicks)
	at, codes, countries, agents, referrers := make([]time.Time, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	bots := make([]bool, n)
	for i, c := range clicks {
		at[i], codes[i], countries[i], agents[i], referrers[i], bots[i] = c.At, c.Code, c.Country, c.Agent, c.Referer, c.Bot()
	}
	days, links := shortener.Rollup(clicks)
	dCodes, dDates, dCountries, dBots, dClicks := make([]string, len(days)), make([]time.Time, len(days)), make([]string, len(days)), make([]bool, len(days)), make([]int64, len(days))
	for i, d := range days {
		dCodes[i], dDates[i], dCountries[i], dBots[i], dClicks[i] = d.Code, d.Date, d.Country, d.Bot, d.Clicks
	}
	lCodes, lClicks, lLast := make([]string, len(links)), make([]int64, len(links)), make([]time.Time, len(links))
	lBots, lHuman := make([]int64, len(links)), make([]*time.Time, len(links))
	for i, l := range links {
		lCodes[i], lClicks[i], lLast[i], lBots[i] = l.Code, l.HumanClicks, l.LastAccess, l.BotClicks
		if !l.LastHuman.IsZero() {
			h := l.LastHuman
			lHuman[i] = &h
		}
	}
	dims := shortener.RollupDims(clicks)
	mCodes, mDates, mDims, mValues := make([]string, len(dims)), make([]time.Time, len(dims)), make([]string, len(dims)), make([]string, len(dims))
	mBots, mClicks := make([]bool, len(dims)), make([]int64, len(dims))
	for i, d := range dims {
		mCodes[i], mDates[i], mDims[i], mValues[i], mBots[i], mClicks[i] = d.Code, d.Date, d.Dim, d.Value, d.Bot, d.Clicks
	}
	return mapErr(s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO click_events (region, clicked_at, code, country, bot, agent, referrer)
			SELECT $1, t.at, t.code, t.country, t.bot, t.agent, t.referrer
			FROM unnest($2::TIMESTAMPTZ[], $3::TEXT[], $4::TEXT[], $5::BOOL[], $6::TEXT[], $7::TEXT[])
				AS t (at, code, country, bot, agent, referrer)`,
			region, at, codes, countries, bots, agents, referrers); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO click_daily (code, click_date, country, bot, region, clicks)
			SELECT t.code, t.day, t.country, t.bot, $1, t.clicks
			FROM unnest($2::TEXT[], $3::DATE[], $4::TEXT[], $5::BOOL[], $6::INT8[]) AS t (code, day, country, bot, clicks)
			ON CONFLICT (code, click_date, country, bot, region) DO UPDATE SET clicks = click_daily.clicks + excluded.clicks`,
			region, dCodes, dDates, dCountries, dBots, dClicks); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO click_dims (code, click_date, dim, value, bot, region, clicks)
			SELECT t.code, t.day, t.dim, t.value, t.bot, $1, t.clicks
			FROM unnest($2::TEXT[], $3::DATE[], $4::TEXT[], $5::TEXT[], $6::BOOL[], $7::INT8[]) AS t (code, day, dim, value, bot, clicks)
			ON CONFLICT (code, click_date, dim, value, bot, region) DO UPDATE SET clicks = click_dims.clicks + excluded.clicks`,
			region, mCodes, mDates, mDims, mValues, mBots, mClicks); err != nil {
			return err
		}
		// A batch without human clicks (NULL) leaves last_human_access_at as
		// it was; the COALESCEs spell that out on both engines.
		_, err := tx.Exec(ctx, `
			UPDATE short_links AS l SET
				click_count = l.click_count + t.clicks,
				bot_click_count = l.bot_click_count + t.bots,
				last_access_at = GREATEST(COALESCE(l.last_access_at, t.last), t.last),
				last_human_access_at = GREATEST(COALESCE(l.last_human_access_at, t.human), COALESCE(t.human, l.last_human_access_at))
			FROM unnest($1::TEXT[], $2::INT8[], $3::TIMESTAMPTZ[], $4::INT8[], $5::TIMESTAMPTZ[]) AS t (code, clicks, last, bots, human)
			WHERE l.code = t.code`,
			lCodes, lClicks, lLast, lBots, lHuman)
		return err
	}))
}

// ClickStats implements shortener.Store.
func (s *Store) ClickStats(ctx context.Context, code string, from, to time.Time) (out []shortener.DayCount, err error) {
	err = s.do(ctx, func() error {
		rows, err := s.pool.Query(ctx, `
			SELECT click_date, country, bot, sum(clicks)::INT8 FROM click_daily
			WHERE code = $1 AND click_date BETWEEN $2::DATE AND $3::DATE
			GROUP BY click_date, country, bot`,
			code, shortDay(from), shortDay(to))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (shortener.DayCount, error) {
			var d shortener.DayCount
			err := r.Scan(&d.Date, &d.Country, &d.Bot, &d.Clicks)
			d.Date = time.Date(d.Date.Year(), d.Date.Month(), d.Date.Day(), 0, 0, 0, 0, time.UTC)
			return d, err
		})
		return err
	})
	return out, mapErr(err)
}

// ClickDims implements shortener.Store.
func (s *Store) ClickDims(ctx context.Context, code string, from, to time.Time) (out []shortener.DimCount, err error) {
	err = s.do(ctx, func() error {
		rows, err := s.pool.Query(ctx, `
			SELECT dim, value, bot, sum(clicks)::INT8 FROM click_dims
			WHERE code = $1 AND click_date BETWEEN $2::DATE AND $3::DATE
			GROUP BY dim, value, bot`,
			code, shortDay(from), shortDay(to))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (shortener.DimCount, error) {
			var d shortener.DimCount
			err := r.Scan(&d.Dim, &d.Value, &d.Bot, &d.Clicks)
			return d, err
		})
		return err
	})
	return out, mapErr(err)
}
