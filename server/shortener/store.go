package shortener

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"
)

// Link is a short link as stored.
type Link struct {
	Code         string
	OwnerID      string
	Target       string
	Custom       bool // a chosen alias rather than a generated code
	CreatedAt    time.Time
	ExpiresAt    time.Time // zero: never
	PasswordHash string    // argon2id PHC string; empty: no password
	Kind         int       // 301 or 302
	Clicks       int64     // human clicks flushed so far
	BotClicks    int64     // bot and preview clicks flushed so far
	LastAccessAt time.Time // last click of anyone flushed so far; zero: never
	LastHumanAt  time.Time // last human click flushed so far; zero: never
	DeletedAt    time.Time // zero: live
	// MaxVisits is how many human redirects it serves (0: no limit);
	// Visits is the store's visit counter (TakeVisit), used when no Redis
	// keeps the counters.
	// (omitempty: the embedded store's rows of ordinary links stay as
	// they were.)
	MaxVisits int64 `json:",omitempty"`
	Visits    int64 `json:",omitempty"`
	// DeviceTargets are targets by device class (TargetAndroid, ...);
	// nil when none.
	DeviceTargets map[string]string `json:",omitempty"`
}

// LinkUpdate changes some fields of a link; nil pointers leave them as they are.
type LinkUpdate struct {
	Target       *string
	ExpiresAt    *time.Time // pointer to zero: no expiry
	PasswordHash *string    // pointer to "": no password
	Kind         *int       // 301 or 302
	MaxVisits    *int64     // pointer to 0: no limit
	// DeviceTargets are merged into the link's: an empty value removes
	// that device's target.
	DeviceTargets map[string]string
}

// Apply changes l as u says (for stores that rewrite whole links).
func (u LinkUpdate) Apply(l *Link) {
	if u.Target != nil {
		l.Target = *u.Target
	}
	if u.ExpiresAt != nil {
		l.ExpiresAt = *u.ExpiresAt
	}
	if u.PasswordHash != nil {
		l.PasswordHash = *u.PasswordHash
	}
	if u.Kind != nil {
		l.Kind = *u.Kind
	}
	if u.MaxVisits != nil {
		l.MaxVisits = *u.MaxVisits
	}
	l.DeviceTargets = MergeDevices(l.DeviceTargets, u.DeviceTargets)
}

// MergeDevices returns old with the targets of u set (removed when
// empty); nil when none is left.
func MergeDevices(old, u map[string]string) map[string]string {
	if len(u) == 0 {
		return old
	}
	out := map[string]string{}
	for k, v := range old {
		out[k] = v
	}
	for k, v := range u {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Cursor positions a listing after a link (newest first order).
type Cursor struct {
	CreatedAt time.Time
	Code      string
}

// Agent classes of a click.
const (
	AgentHuman   = "human"
	AgentBot     = "bot"
	AgentPreview = "preview" // link-preview crawlers (chat apps, social networks)
)

// Click is one redirect, as the analytics pipeline stores it.
type Click struct {
	Code    string
	At      time.Time
	Country string // ISO 3166-1 alpha-2, or ZZ
	Referer string // host of the Referer, "" when none
	Agent   string // AgentHuman, AgentBot or AgentPreview
	Browser string // browser family ("Chrome"), or the bot's name; "" unknown
	OS      string // operating system ("Android"); "" unknown
	Device  string // DeviceDesktop, DeviceMobile, ...
}

// Device classes of a click.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceBot     = "bot"
	DeviceUnknown = "unknown"
)

// Dimensions a click is also counted by, apart from day and country.
const (
	DimReferrer = "referrer"
	DimBrowser  = "browser"
	DimOS       = "os"
	DimDevice   = "device"
)

// Dims is the click's value of each dimension, in a fixed order.
func (c Click) Dims() [4][2]string {
	return [4][2]string{{DimReferrer, c.Referer}, {DimBrowser, c.Browser}, {DimOS, c.OS}, {DimDevice, c.Device}}
}

// DimCount is the clicks of one code on one day with one value of a
// dimension, by humans or by bots.
type DimCount struct {
	Date   time.Time // midnight UTC
	Dim    string    // DimReferrer, DimBrowser, DimOS or DimDevice
	Value  string
	Bot    bool
	Clicks int64
}

// CodeDimCount is a DimCount of one code.
type CodeDimCount struct {
	Code string
	DimCount
}

// Bot reports whether the click is counted apart from human clicks.
func (c Click) Bot() bool { return c.Agent != AgentHuman }

// DayCount is the clicks of one code on one day, from one country, by
// humans or by bots.
type DayCount struct {
	Date    time.Time // midnight UTC
	Country string
	Bot     bool
	Clicks  int64
}

// ErrDeleted is returned by UpdateLink and DeleteLink for a deleted link.
var ErrDeleted = errors.New("shortener: link deleted")

// Store keeps links and their analytics. Deleted links stay as tombstones,
// so a code is never issued twice.
type Store interface {
	// CodeKey returns the key of the code permutation, creating it at random
	// on first use; it never changes afterwards.
	CodeKey(ctx context.Context) ([]byte, error)
	// ReserveIDs reserves n consecutive ids and returns the first. No id is
	// returned twice, whatever the number of concurrent callers.
	ReserveIDs(ctx context.Context, n int) (uint64, error)
	// CreateLinks inserts links in one transaction; created[i] is false when
	// links[i].Code was taken (by a stored link, deleted or not, or by an
	// earlier item of the same call).
	CreateLinks(ctx context.Context, links []Link) (created []bool, err error)
	// GetLink returns a link whatever its state (storage.ErrNotFound if unknown).
	GetLink(ctx context.Context, code string) (Link, error)
	// ListLinks returns up to limit live links of owner ordered by
	// (CreatedAt, Code) descending, strictly after the cursor when one is
	// given; with a non-empty query, only those whose code or target contains
	// it, ignoring case.
	ListLinks(ctx context.Context, ownerID, query string, after *Cursor, limit int) ([]Link, error)
	// UpdateLink applies u to a live link and returns it (storage.ErrNotFound,
	// ErrDeleted).
	UpdateLink(ctx context.Context, code string, u LinkUpdate) (Link, error)
	// TakeVisit counts one visit of a live link with a visit limit if the
	// larger of its visit counter and its human click count is below the
	// limit, setting the counter to that plus one, and reports whether it
	// did; atomically, whatever the number of concurrent callers and
	// processes. False for a link without a limit, deleted or unknown.
	TakeVisit(ctx context.Context, code string) (bool, error)
	// DeleteLink marks a live link deleted at the given time
	// (storage.ErrNotFound, ErrDeleted).
	DeleteLink(ctx context.Context, code string, at time.Time) error
	// RecordClicks stores a batch of clicks served in region, all or nothing:
	// the day/country and day/dimension aggregates, and each link's human
	// and bot click counts and last access times.
	RecordClicks(ctx context.Context, region string, clicks []Click) error
	// ClickStats returns code's aggregates for the days from..to (inclusive,
	// midnight UTC), summed over regions, in any order.
	ClickStats(ctx context.Context, code string, from, to time.Time) ([]DayCount, error)
	// ClickDims returns code's per-dimension aggregates for the days from..to
	// (inclusive, midnight UTC), summed over regions and days, in any order
	// (Date is zero).
	ClickDims(ctx context.Context, code string, from, to time.Time) ([]DimCount, error)
}

// CodeDayCount is a DayCount of one code.
type CodeDayCount struct {
	Code string
	DayCount
}

// LinkActivity is what a batch of clicks adds to one link's details.
type LinkActivity struct {
	Code        string
	HumanClicks int64
	BotClicks   int64
	LastAccess  time.Time
	LastHuman   time.Time // zero: no human click in the batch
}

// RollupDims sums a batch of clicks per (code, day, dimension, value, bot),
// sorted by key like Rollup.
func RollupDims(clicks []Click) []CodeDimCount {
	type dimKey struct {
		code       string
		day        int64
		dim, value string
		bot        bool
	}
	counts := map[dimKey]int64{}
	for _, c := range clicks {
		at := c.At.UTC()
		day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC).Unix()
		for _, d := range c.Dims() {
			counts[dimKey{c.Code, day, d[0], d[1], c.Bot()}]++
		}
	}
	out := make([]CodeDimCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, CodeDimCount{k.code, DimCount{Date: time.Unix(k.day, 0).UTC(), Dim: k.dim, Value: k.value, Bot: k.bot, Clicks: n}})
	}
	slices.SortFunc(out, func(a, b CodeDimCount) int {
		return cmp.Or(cmp.Compare(a.Code, b.Code), a.Date.Compare(b.Date), cmp.Compare(a.Dim, b.Dim), cmp.Compare(a.Value, b.Value), cmpBool(a.Bot, b.Bot))
	})
	return out
}

// Rollup sums a batch of clicks per (code, day, country, bot) and per code,
// for the stores' RecordClicks. Both lists are sorted by key, so that
// concurrent writers touch rows in one order.
func Rollup(clicks []Click) ([]CodeDayCount, []LinkActivity) {
	type dayKey struct {
		code    string
		day     int64
		country string
		bot     bool
	}
	days := map[dayKey]int64{}
	links := map[string]*LinkActivity{}
	for _, c := range clicks {
		at := c.At.UTC()
		day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
		days[dayKey{c.Code, day.Unix(), c.Country, c.Bot()}]++
		l := links[c.Code]
		if l == nil {
			l = &LinkActivity{Code: c.Code}
			links[c.Code] = l
		}
		if !c.Bot() {
			l.HumanClicks++
			if at.After(l.LastHuman) {
				l.LastHuman = at
			}
		} else {
			l.BotClicks++
		}
		if at.After(l.LastAccess) {
			l.LastAccess = at
		}
	}
	outDays := make([]CodeDayCount, 0, len(days))
	for k, n := range days {
		outDays = append(outDays, CodeDayCount{k.code, DayCount{Date: time.Unix(k.day, 0).UTC(), Country: k.country, Bot: k.bot, Clicks: n}})
	}
	slices.SortFunc(outDays, func(a, b CodeDayCount) int {
		return cmp.Or(cmp.Compare(a.Code, b.Code), a.Date.Compare(b.Date), cmp.Compare(a.Country, b.Country), cmpBool(a.Bot, b.Bot))
	})
	outLinks := make([]LinkActivity, 0, len(links))
	for _, l := range links {
		outLinks = append(outLinks, *l)
	}
	slices.SortFunc(outLinks, func(a, b LinkActivity) int { return cmp.Compare(a.Code, b.Code) })
	return outDays, outLinks
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
