package embedded

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/shortener"
)

// Shortener buckets. Click aggregates are kept per (code, day, country,
// bot); the raw click events the SQL store also keeps are not stored here
// (nothing reads them, and a one-process store should stay small).
var (
	bShortLinks   = []byte("short_links")          // code -> Link
	bShortByOwner = []byte("short_links_by_owner") // owner \x00 created(8) code -> nil; live links only
	bShortMeta    = []byte("short_meta")           // "key" -> code key; "next_id" -> uint64
	bShortDaily   = []byte("short_daily")          // code \x00 YYYY-MM-DD \x00 country \x00 bot -> uint64
	bShortDims    = []byte("short_dims")           // code \x00 YYYY-MM-DD \x00 dim \x00 value \x00 bot -> uint64
)

func init() {
	allBuckets = append(allBuckets, bShortLinks, bShortByOwner, bShortMeta, bShortDaily, bShortDims)
}

var (
	shortMetaKey    = []byte("key")
	shortMetaNextID = []byte("next_id")
)

// CodeKey implements shortener.Store.
func (s *Store) CodeKey(ctx context.Context) (key []byte, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bShortMeta)
		if k := b.Get(shortMetaKey); k != nil {
			key = bytes.Clone(k)
			return nil
		}
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		return b.Put(shortMetaKey, key)
	})
	return key, err
}

// ReserveIDs implements shortener.Store.
func (s *Store) ReserveIDs(ctx context.Context, n int) (first uint64, err error) {
	if n <= 0 {
		return 0, errors.New("embedded: reserve at least one id")
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bShortMeta)
		if v := b.Get(shortMetaNextID); v != nil {
			first = binary.BigEndian.Uint64(v)
		}
		return b.Put(shortMetaNextID, binary.BigEndian.AppendUint64(nil, first+uint64(n)))
	})
	return first, err
}

// CreateLinks implements shortener.Store.
func (s *Store) CreateLinks(ctx context.Context, links []shortener.Link) (created []bool, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		created = make([]bool, len(links))
		b := tx.Bucket(bShortLinks)
		for i, l := range links {
			if b.Get([]byte(l.Code)) != nil {
				continue
			}
			if err := put(tx, bShortLinks, []byte(l.Code), l); err != nil {
				return err
			}
			if err := tx.Bucket(bShortByOwner).Put(ownerKey(l.OwnerID, l.CreatedAt, l.Code), nil); err != nil {
				return err
			}
			created[i] = true
		}
		return nil
	})
	return created, err
}

// GetLink implements shortener.Store.
func (s *Store) GetLink(ctx context.Context, code string) (l shortener.Link, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		l, err = get[shortener.Link](tx, bShortLinks, []byte(code))
		return err
	})
	return l, err
}

// ListLinks implements shortener.Store.
func (s *Store) ListLinks(ctx context.Context, ownerID, query string, after *shortener.Cursor, limit int) (out []shortener.Link, err error) {
	prefix := append([]byte(ownerID), 0)
	query = strings.ToLower(query)
	err = s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bShortByOwner).Cursor()
		var k []byte
		if after != nil {
			// Strictly before the cursor in key order (after it, newest first).
			if k, _ = c.Seek(ownerKey(ownerID, after.CreatedAt, after.Code)); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		} else if k, _ = c.Seek(append([]byte(ownerID), 1)); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Prev() {
			l, err := get[shortener.Link](tx, bShortLinks, k[len(prefix)+8:])
			if err != nil {
				return err
			}
			if query != "" && !strings.Contains(strings.ToLower(l.Code), query) && !strings.Contains(strings.ToLower(l.Target), query) {
				continue
			}
			out = append(out, l)
		}
		return nil
	})
	return out, err
}

// UpdateLink implements shortener.Store.
func (s *Store) UpdateLink(ctx context.Context, code string, u shortener.LinkUpdate) (l shortener.Link, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		if l, err = get[shortener.Link](tx, bShortLinks, []byte(code)); err != nil {
			return err
		}
		if !l.DeletedAt.IsZero() {
			return shortener.ErrDeleted
		}
		u.Apply(&l)
		return put(tx, bShortLinks, []byte(code), l)
	})
	return l, err
}

// TakeVisit implements shortener.Store: one write transaction, so visits
// taken at once are counted one after the other.
func (s *Store) TakeVisit(ctx context.Context, code string) (taken bool, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		l, err := get[shortener.Link](tx, bShortLinks, []byte(code))
		if errors.Is(err, storeerr.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		n := max(l.Visits, l.Clicks)
		if l.MaxVisits == 0 || !l.DeletedAt.IsZero() || n >= l.MaxVisits {
			return nil
		}
		l.Visits, taken = n+1, true
		return put(tx, bShortLinks, []byte(code), l)
	})
	return taken, err
}

// DeleteLink implements shortener.Store.
func (s *Store) DeleteLink(ctx context.Context, code string, at time.Time) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		l, err := get[shortener.Link](tx, bShortLinks, []byte(code))
		if err != nil {
			return err
		}
		if !l.DeletedAt.IsZero() {
			return shortener.ErrDeleted
		}
		l.DeletedAt = at
		if err := tx.Bucket(bShortByOwner).Delete(ownerKey(l.OwnerID, l.CreatedAt, l.Code)); err != nil {
			return err
		}
		return put(tx, bShortLinks, []byte(code), l)
	})
}

func shortDailyKey(code string, day time.Time, country string, bot bool) []byte {
	return shortClickKey(bot, code, day.UTC().Format(time.DateOnly), country)
}

// shortClickKey is the key of a click counter: each field followed by a
// NUL, then the bot flag (0 or 1).
func shortClickKey(bot bool, fields ...string) []byte {
	n := 1
	for _, f := range fields {
		n += len(f) + 1
	}
	k := make([]byte, 0, n)
	for _, f := range fields {
		k = append(append(k, f...), 0)
	}
	if bot {
		return append(k, 1)
	}
	return append(k, 0)
}

// RecordClicks implements shortener.Store. Region is not kept: one process
// serves one region.
func (s *Store) RecordClicks(ctx context.Context, region string, clicks []shortener.Click) error {
	days, links := shortener.Rollup(clicks)
	dims := shortener.RollupDims(clicks)
	return s.update(ctx, func(tx *bolt.Tx) error {
		db := tx.Bucket(bShortDims)
		for _, d := range dims {
			k := shortDimKey(d.Code, d.Date, d.Dim, d.Value, d.Bot)
			var n uint64
			if v := db.Get(k); v != nil {
				n = binary.BigEndian.Uint64(v)
			}
			if err := db.Put(k, binary.BigEndian.AppendUint64(nil, n+uint64(d.Clicks))); err != nil {
				return err
			}
		}
		b := tx.Bucket(bShortDaily)
		for _, d := range days {
			k := shortDailyKey(d.Code, d.Date, d.Country, d.Bot)
			var n uint64
			if v := b.Get(k); v != nil {
				n = binary.BigEndian.Uint64(v)
			}
			if err := b.Put(k, binary.BigEndian.AppendUint64(nil, n+uint64(d.Clicks))); err != nil {
				return err
			}
		}
		for _, a := range links {
			l, err := get[shortener.Link](tx, bShortLinks, []byte(a.Code))
			if errors.Is(err, storeerr.ErrNotFound) {
				continue // clicks of a link that never existed: nothing to count on
			}
			if err != nil {
				return err
			}
			l.Clicks += a.HumanClicks
			l.BotClicks += a.BotClicks
			if a.LastAccess.After(l.LastAccessAt) {
				l.LastAccessAt = a.LastAccess
			}
			if a.LastHuman.After(l.LastHumanAt) {
				l.LastHumanAt = a.LastHuman
			}
			if err := put(tx, bShortLinks, []byte(a.Code), l); err != nil {
				return err
			}
		}
		return nil
	})
}

// ClickStats implements shortener.Store.
func (s *Store) ClickStats(ctx context.Context, code string, from, to time.Time) (out []shortener.DayCount, err error) {
	prefix := append([]byte(code), 0)
	start := append(bytes.Clone(prefix), from.UTC().Format(time.DateOnly)...)
	last := to.UTC().Format(time.DateOnly)
	err = s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bShortDaily).Cursor()
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			rest := k[len(prefix):]
			parts := bytes.SplitN(rest, []byte{0}, 3)
			if len(parts) != 3 || len(parts[2]) != 1 {
				continue
			}
			if string(parts[0]) > last {
				break
			}
			day, err := time.Parse(time.DateOnly, string(parts[0]))
			if err != nil {
				return err
			}
			out = append(out, shortener.DayCount{Date: day, Country: string(parts[1]), Bot: parts[2][0] == 1, Clicks: int64(binary.BigEndian.Uint64(v))})
		}
		return nil
	})
	return out, err
}

func shortDimKey(code string, day time.Time, dim, value string, bot bool) []byte {
	return shortClickKey(bot, code, day.UTC().Format(time.DateOnly), dim, value)
}

// ClickDims implements shortener.Store. A key is parsed from both ends, so
// a value holding a NUL byte cannot shift the fields.
func (s *Store) ClickDims(ctx context.Context, code string, from, to time.Time) (out []shortener.DimCount, err error) {
	prefix := append([]byte(code), 0)
	start := append(bytes.Clone(prefix), from.UTC().Format(time.DateOnly)...)
	last := to.UTC().Format(time.DateOnly)
	type key struct {
		dim, value string
		bot        bool
	}
	sums := map[key]int64{}
	err = s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bShortDims).Cursor()
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			rest := k[len(prefix):]
			if len(rest) < len(time.DateOnly)+5 || rest[len(time.DateOnly)] != 0 || rest[len(rest)-2] != 0 {
				continue
			}
			if string(rest[:len(time.DateOnly)]) > last {
				break
			}
			dimValue := rest[len(time.DateOnly)+1 : len(rest)-2]
			i := bytes.IndexByte(dimValue, 0)
			if i < 0 {
				continue
			}
			sums[key{string(dimValue[:i]), string(dimValue[i+1:]), rest[len(rest)-1] == 1}] += int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	for k, n := range sums {
		out = append(out, shortener.DimCount{Dim: k.dim, Value: k.value, Bot: k.bot, Clicks: n})
	}
	return out, err
}
