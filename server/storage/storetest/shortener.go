package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/shortener"
)

// RunShortener runs the shortener store's suite; open returns an empty store.
func RunShortener(t *testing.T, open func(t *testing.T) shortener.Store) {
	t.Run("CodeKey", func(t *testing.T) { testCodeKey(t, open(t)) })
	t.Run("ReserveIDsConcurrent", func(t *testing.T) { testReserveIDs(t, open(t)) })
	t.Run("Links", func(t *testing.T) { testLinks(t, open(t)) })
	t.Run("ListLinksPages", func(t *testing.T) { testListLinks(t, open(t)) })
	t.Run("UpdateDelete", func(t *testing.T) { testUpdateDelete(t, open(t)) })
	t.Run("Clicks", func(t *testing.T) { testClicks(t, open(t)) })
	t.Run("ClicksConcurrent", func(t *testing.T) { testClicksConcurrent(t, open(t)) })
	t.Run("VisitsAndDevices", func(t *testing.T) { testVisitsAndDevices(t, open(t)) })
}

// A visit limit is taken atomically, counted from the clicks stored so far;
// device targets merge on update.
func testVisitsAndDevices(t *testing.T, s shortener.Store) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	l := shortener.Link{Code: "limited", Target: "https://example.com/", Kind: 302, CreatedAt: now, MaxVisits: 5,
		DeviceTargets: map[string]string{shortener.TargetIOS: "https://example.com/ios"}}
	_, err := s.CreateLinks(ctx, []shortener.Link{l, {Code: "plain", Target: "https://example.com/", Kind: 302, CreatedAt: now}})
	must(t, err)
	got, err := s.GetLink(ctx, l.Code)
	must(t, err)
	if got.MaxVisits != 5 || got.Visits != 0 || got.DeviceTargets[shortener.TargetIOS] != "https://example.com/ios" || len(got.DeviceTargets) != 1 {
		t.Fatalf("stored %+v", got)
	}
	// Two human clicks stored before: three visits are left.
	must(t, s.RecordClicks(ctx, "r", []shortener.Click{
		{Code: l.Code, At: now, Country: "ZZ", Agent: shortener.AgentHuman}, {Code: l.Code, At: now, Country: "ZZ", Agent: shortener.AgentHuman}}))
	var taken atomicCount
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.TakeVisit(ctx, l.Code)
			if err != nil {
				t.Error(err)
			}
			if ok {
				taken.add()
			}
		}()
	}
	wg.Wait()
	if n := taken.get(); n != 3 {
		t.Fatalf("%d visits taken, want 3", n)
	}
	for _, code := range []string{"plain", "unknown"} {
		if ok, err := s.TakeVisit(ctx, code); ok || err != nil {
			t.Fatalf("TakeVisit(%s) = %v, %v", code, ok, err)
		}
	}
	more := int64(6)
	got, err = s.UpdateLink(ctx, l.Code, shortener.LinkUpdate{MaxVisits: &more, DeviceTargets: map[string]string{
		shortener.TargetAndroid: "https://example.com/android", shortener.TargetIOS: ""}})
	must(t, err)
	if got.MaxVisits != 6 || got.Visits != 5 || len(got.DeviceTargets) != 1 || got.DeviceTargets[shortener.TargetAndroid] != "https://example.com/android" {
		t.Fatalf("updated %+v", got)
	}
	if ok, err := s.TakeVisit(ctx, l.Code); !ok || err != nil {
		t.Fatalf("the raised limit: %v, %v", ok, err)
	}
	none := int64(0)
	got, err = s.UpdateLink(ctx, l.Code, shortener.LinkUpdate{MaxVisits: &none, DeviceTargets: map[string]string{shortener.TargetAndroid: ""}})
	must(t, err)
	if got.MaxVisits != 0 || got.DeviceTargets != nil {
		t.Fatalf("cleared %+v", got)
	}
	if ok, err := s.TakeVisit(ctx, l.Code); ok || err != nil {
		t.Fatalf("without a limit: %v, %v", ok, err)
	}
}

type atomicCount struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCount) add()     { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *atomicCount) get() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

func testCodeKey(t *testing.T, s shortener.Store) {
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := s.CodeKey(ctx)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	if len(keys[0]) < 16 || bytes.Equal(keys[0], make([]byte, len(keys[0]))) {
		t.Fatalf("key %x: want at least 16 random bytes", keys[0])
	}
	for _, k := range keys {
		if !bytes.Equal(k, keys[0]) {
			t.Fatalf("concurrent first calls disagree: %x vs %x", k, keys[0])
		}
	}
	again, err := s.CodeKey(ctx)
	must(t, err)
	if !bytes.Equal(again, keys[0]) {
		t.Fatal("the key changed")
	}
}

func testReserveIDs(t *testing.T, s shortener.Store) {
	_, err := s.CodeKey(ctx) // creates the counter
	must(t, err)
	const workers, each, n = 8, 5, 7
	var mu sync.Mutex
	var firsts []uint64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				f, err := s.ReserveIDs(ctx, n)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				firsts = append(firsts, f)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(firsts)
	if len(firsts) != workers*each {
		t.Fatalf("%d reservations, want %d", len(firsts), workers*each)
	}
	for i := 1; i < len(firsts); i++ {
		if firsts[i]-firsts[i-1] < n {
			t.Fatalf("blocks overlap: %d and %d (size %d)", firsts[i-1], firsts[i], n)
		}
	}
}

func newLink(code, owner string, at time.Time) shortener.Link {
	return shortener.Link{Code: code, OwnerID: owner, Target: "https://example.com/" + code, CreatedAt: at, Kind: 302}
}

func testLinks(t *testing.T, s shortener.Store) {
	owner := uuid.NewString()
	n := now()
	full := shortener.Link{
		Code: "Ab3dE5g", OwnerID: owner, Target: "https://example.com/a?b=c#d", CreatedAt: n,
		ExpiresAt: n.Add(time.Hour), PasswordHash: "$argon2id$v=19$x", Kind: 301,
	}
	alias := newLink("my-alias_32", owner, n)
	alias.Custom = true
	created, err := s.CreateLinks(ctx, []shortener.Link{full, alias})
	must(t, err)
	if !slices.Equal(created, []bool{true, true}) {
		t.Fatalf("created = %v", created)
	}
	got, err := s.GetLink(ctx, full.Code)
	must(t, err)
	if got.Code != full.Code || got.OwnerID != owner || got.Target != full.Target || got.Custom || !got.CreatedAt.Equal(n) ||
		!got.ExpiresAt.Equal(full.ExpiresAt) || got.PasswordHash != full.PasswordHash || got.Kind != 301 ||
		got.Clicks != 0 || !got.LastAccessAt.IsZero() || !got.DeletedAt.IsZero() {
		t.Fatalf("GetLink = %+v, want %+v", got, full)
	}
	if got, err := s.GetLink(ctx, alias.Code); err != nil || !got.Custom || !got.ExpiresAt.IsZero() || got.PasswordHash != "" || got.Kind != 302 {
		t.Fatalf("alias = %+v, %v", got, err)
	}
	_, err = s.GetLink(ctx, "nope123")
	wantErr(t, err, storeerr.ErrNotFound)

	// Taken codes are refused item by item; the others go in. A code listed
	// twice in one call goes in once.
	other := newLink("zzzzzzz", uuid.NewString(), n)
	created, err = s.CreateLinks(ctx, []shortener.Link{newLink(full.Code, uuid.NewString(), n), other, newLink("dup-dup", owner, n), newLink("dup-dup", owner, n)})
	must(t, err)
	if !slices.Equal(created, []bool{false, true, true, false}) {
		t.Fatalf("created = %v, want [false true true false]", created)
	}
	if got, _ := s.GetLink(ctx, full.Code); got.OwnerID != owner || got.Target != full.Target {
		t.Fatalf("a refused insert changed the link: %+v", got)
	}
	// A deleted code stays taken: it is never issued again.
	must(t, s.DeleteLink(ctx, other.Code, n))
	created, err = s.CreateLinks(ctx, []shortener.Link{newLink(other.Code, owner, n)})
	must(t, err)
	if created[0] {
		t.Fatal("a deleted code was issued again")
	}
}

func testListLinks(t *testing.T, s shortener.Store) {
	owner, stranger := uuid.NewString(), uuid.NewString()
	base := now()
	var links []shortener.Link
	for i := range 7 {
		// Two links share a creation time: the code breaks the tie.
		at := base.Add(time.Duration(i/2) * time.Second)
		links = append(links, newLink(fmt.Sprintf("code%03d", i), owner, at))
	}
	links = append(links, newLink("strange", stranger, base))
	_, err := s.CreateLinks(ctx, links)
	must(t, err)
	must(t, s.DeleteLink(ctx, "code003", base))

	var got []string
	var after *shortener.Cursor
	for page := 0; ; page++ {
		rows, err := s.ListLinks(ctx, owner, "", after, 2)
		must(t, err)
		for _, l := range rows {
			got = append(got, l.Code)
		}
		if len(rows) < 2 {
			break
		}
		last := rows[len(rows)-1]
		after = &shortener.Cursor{CreatedAt: last.CreatedAt, Code: last.Code}
		if page > 10 {
			t.Fatal("paging does not end")
		}
	}
	want := []string{"code006", "code005", "code004", "code002", "code001", "code000"}
	if !slices.Equal(got, want) {
		t.Fatalf("pages = %v, want %v (newest first, deleted and others' links left out)", got, want)
	}
	if rows, err := s.ListLinks(ctx, uuid.NewString(), "", nil, 10); err != nil || len(rows) != 0 {
		t.Fatalf("a user without links: %v, %v", rows, err)
	}
	// A search matches the code or the target, ignoring case, and pages too.
	for i := range links[:7] {
		if i%2 == 0 {
			links[i].Target = "https://Docs.example/" + links[i].Code
		}
	}
	owner2 := uuid.NewString()
	var searchLinks []shortener.Link
	for i, l := range links[:7] {
		l.Code = fmt.Sprintf("srch%03d", i)
		l.OwnerID = owner2
		if i == 5 {
			l.Code = "DOCSx05" // matched by its code alone; shares srch004's time and sorts below it
		}
		searchLinks = append(searchLinks, l)
	}
	_, err = s.CreateLinks(ctx, searchLinks)
	must(t, err)
	got = nil
	after = nil
	for range 10 {
		rows, err := s.ListLinks(ctx, owner2, "docs", after, 2)
		must(t, err)
		for _, l := range rows {
			got = append(got, l.Code)
		}
		if len(rows) < 2 {
			break
		}
		last := rows[len(rows)-1]
		after = &shortener.Cursor{CreatedAt: last.CreatedAt, Code: last.Code}
	}
	if want := []string{"srch006", "srch004", "DOCSx05", "srch002", "srch000"}; !slices.Equal(got, want) {
		t.Fatalf("search pages = %v, want %v", got, want)
	}
	if rows, err := s.ListLinks(ctx, owner2, "100%_", nil, 10); err != nil || len(rows) != 0 {
		t.Fatalf("wildcards are plain text: %v, %v", rows, err)
	}
}

func testUpdateDelete(t *testing.T, s shortener.Store) {
	owner := uuid.NewString()
	n := now()
	l := newLink("upd1234", owner, n)
	l.ExpiresAt = n.Add(time.Minute)
	_, err := s.CreateLinks(ctx, []shortener.Link{l})
	must(t, err)

	target, hash, exp := "https://example.org/new", "$argon2id$v=19$new", n.Add(2*time.Hour)
	got, err := s.UpdateLink(ctx, l.Code, shortener.LinkUpdate{Target: &target, PasswordHash: &hash, ExpiresAt: &exp})
	must(t, err)
	if got.Target != target || got.PasswordHash != hash || !got.ExpiresAt.Equal(exp) || got.OwnerID != owner || !got.CreatedAt.Equal(n) {
		t.Fatalf("updated = %+v", got)
	}
	// Absent fields stay; pointers to zero values clear.
	var never time.Time
	empty := ""
	permanent := 301
	got, err = s.UpdateLink(ctx, l.Code, shortener.LinkUpdate{ExpiresAt: &never, PasswordHash: &empty, Kind: &permanent})
	must(t, err)
	if got.Target != target || got.PasswordHash != "" || !got.ExpiresAt.IsZero() || got.Kind != 301 {
		t.Fatalf("after clearing = %+v", got)
	}
	if got, _ := s.GetLink(ctx, l.Code); got.Target != target || got.PasswordHash != "" || !got.ExpiresAt.IsZero() || got.Kind != 301 {
		t.Fatalf("read back = %+v", got)
	}
	_, err = s.UpdateLink(ctx, "unknown", shortener.LinkUpdate{Target: &target})
	wantErr(t, err, storeerr.ErrNotFound)

	must(t, s.DeleteLink(ctx, l.Code, n.Add(time.Second)))
	if got, _ := s.GetLink(ctx, l.Code); !got.DeletedAt.Equal(n.Add(time.Second)) {
		t.Fatalf("deleted_at = %v", got.DeletedAt)
	}
	wantErr(t, s.DeleteLink(ctx, l.Code, n.Add(time.Minute)), shortener.ErrDeleted)
	_, err = s.UpdateLink(ctx, l.Code, shortener.LinkUpdate{Target: &target})
	wantErr(t, err, shortener.ErrDeleted)
	wantErr(t, s.DeleteLink(ctx, "unknown", n), storeerr.ErrNotFound)
	if got, _ := s.GetLink(ctx, l.Code); !got.DeletedAt.Equal(n.Add(time.Second)) {
		t.Fatalf("the first deletion time was not kept: %v", got.DeletedAt)
	}
}

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func testClicks(t *testing.T, s shortener.Store) {
	n := now()
	a, b := newLink("clicksA", uuid.NewString(), n), newLink("clicksB", uuid.NewString(), n)
	_, err := s.CreateLinks(ctx, []shortener.Link{a, b})
	must(t, err)
	d1 := day("2025-03-01").Add(23*time.Hour + 59*time.Minute)
	d2 := day("2025-03-02").Add(time.Minute)
	click := func(code string, at time.Time, country, agent string) shortener.Click {
		c := shortener.Click{Code: code, At: at, Country: country, Agent: agent, Referer: "news.example",
			Browser: "Firefox", OS: "Linux", Device: shortener.DeviceDesktop}
		if agent != shortener.AgentHuman {
			c.Referer, c.Browser, c.OS, c.Device = "", "Googlebot", "", shortener.DeviceBot
		}
		return c
	}
	must(t, s.RecordClicks(ctx, "us-east1", []shortener.Click{
		click(a.Code, d1, "DE", shortener.AgentHuman),
		click(a.Code, d1, "DE", shortener.AgentHuman),
		click(a.Code, d1, "FR", shortener.AgentBot),
		click(a.Code, d2, "DE", shortener.AgentPreview),
		click(b.Code, d2, "US", shortener.AgentHuman),
		click("unknown", d2, "US", shortener.AgentHuman), // a link that does not exist: ignored by the counters
	}))
	// Another region's flusher adds to the same day and country.
	must(t, s.RecordClicks(ctx, "europe-west1", []shortener.Click{
		click(a.Code, d2.Add(time.Hour), "DE", shortener.AgentHuman),
		click(a.Code, day("2025-02-27"), "DE", shortener.AgentHuman), // outside the range asked below
	}))

	rows, err := s.ClickStats(ctx, a.Code, day("2025-02-28"), day("2025-03-02"))
	must(t, err)
	type k struct {
		day, country string
		bot          bool
	}
	got := map[k]int64{}
	for _, r := range rows {
		got[k{r.Date.Format(time.DateOnly), r.Country, r.Bot}] += r.Clicks
	}
	want := map[k]int64{
		{"2025-03-01", "DE", false}: 2,
		{"2025-03-01", "FR", true}:  1,
		{"2025-03-02", "DE", true}:  1,
		{"2025-03-02", "DE", false}: 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stats = %v, want %v", got, want)
	}
	dims, err := s.ClickDims(ctx, a.Code, day("2025-02-28"), day("2025-03-02"))
	must(t, err)
	type dk struct {
		dim, value string
		bot        bool
	}
	gotDims := map[dk]int64{}
	for _, d := range dims {
		gotDims[dk{d.Dim, d.Value, d.Bot}] += d.Clicks
	}
	wantDims := map[dk]int64{
		{shortener.DimReferrer, "news.example", false}: 3, {shortener.DimReferrer, "", true}: 2,
		{shortener.DimBrowser, "Firefox", false}: 3, {shortener.DimBrowser, "Googlebot", true}: 2,
		{shortener.DimOS, "Linux", false}: 3, {shortener.DimOS, "", true}: 2,
		{shortener.DimDevice, shortener.DeviceDesktop, false}: 3, {shortener.DimDevice, shortener.DeviceBot, true}: 2,
	}
	if fmt.Sprint(gotDims) != fmt.Sprint(wantDims) {
		t.Fatalf("dims = %v, want %v", gotDims, wantDims)
	}
	// Details: human and bot clicks apart, last access of anyone and of a
	// person.
	la, err := s.GetLink(ctx, a.Code)
	must(t, err)
	if la.Clicks != 4 || la.BotClicks != 2 || !la.LastAccessAt.Equal(d2.Add(time.Hour)) || !la.LastHumanAt.Equal(d2.Add(time.Hour)) {
		t.Fatalf("link a: clicks %d/%d last %v/%v, want 4/2 and %v", la.Clicks, la.BotClicks, la.LastAccessAt, la.LastHumanAt, d2.Add(time.Hour))
	}
	// A later batch of bots only moves the last access, not the last human one.
	must(t, s.RecordClicks(ctx, "us-east1", []shortener.Click{click(a.Code, d2.Add(2*time.Hour), "DE", shortener.AgentBot)}))
	if la, _ := s.GetLink(ctx, a.Code); la.BotClicks != 3 || !la.LastAccessAt.Equal(d2.Add(2*time.Hour)) || !la.LastHumanAt.Equal(d2.Add(time.Hour)) {
		t.Fatalf("after a bot: %+v", la)
	}
	if lb, _ := s.GetLink(ctx, b.Code); lb.Clicks != 1 || lb.BotClicks != 0 || !lb.LastAccessAt.Equal(d2) || !lb.LastHumanAt.Equal(d2) {
		t.Fatalf("link b: %+v", lb)
	}
	if rows, err := s.ClickStats(ctx, b.Code, day("2025-03-03"), day("2025-03-10")); err != nil || len(rows) != 0 {
		t.Fatalf("empty range: %v, %v", rows, err)
	}
	must(t, s.RecordClicks(ctx, "us-east1", nil))
}

func testClicksConcurrent(t *testing.T, s shortener.Store) {
	n := now()
	codes := []string{"conc001", "conc002", "conc003"}
	var links []shortener.Link
	for _, c := range codes {
		links = append(links, newLink(c, uuid.NewString(), n))
	}
	_, err := s.CreateLinks(ctx, links)
	must(t, err)
	const flushers, batches = 6, 5
	var wg sync.WaitGroup
	for f := range flushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			region := []string{"us-east1", "europe-west1"}[f%2]
			for range batches {
				var cs []shortener.Click
				// Each flusher lists the codes in a different order.
				for i := range codes {
					c := codes[(i+f)%len(codes)]
					cs = append(cs, shortener.Click{Code: c, At: n, Country: "DE", Agent: shortener.AgentHuman})
				}
				if err := s.RecordClicks(ctx, region, cs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	d := n.Truncate(24 * time.Hour)
	for _, c := range codes {
		l, err := s.GetLink(ctx, c)
		must(t, err)
		rows, err := s.ClickStats(ctx, c, d, d)
		must(t, err)
		var sum int64
		for _, r := range rows {
			sum += r.Clicks
		}
		if l.Clicks != flushers*batches || sum != flushers*batches {
			t.Fatalf("%s: %d clicks in details, %d in stats, want %d", c, l.Clicks, sum, flushers*batches)
		}
	}
}
