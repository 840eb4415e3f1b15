package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/canvas"
	"github.com/apiplatform/platform/server/platform/storeerr"
)

// RunCanvas runs the canvas store suite; open returns an empty store.
func RunCanvas(t *testing.T, open func(t *testing.T) canvas.Store) {
	t.Run("Meta", func(t *testing.T) { testCanvasMeta(t, open(t)) })
	t.Run("HistoryPages", func(t *testing.T) { testPixelHistory(t, open(t)) })
	t.Run("AppendIdempotent", func(t *testing.T) { testAppendIdempotent(t, open(t)) })
	t.Run("AppendConcurrent", func(t *testing.T) { testAppendConcurrent(t, open(t)) })
	t.Run("LatestPixels", func(t *testing.T) { testLatestPixels(t, open(t)) })
	t.Run("Bans", func(t *testing.T) { testBans(t, open(t)) })
	t.Run("ForgetAuthor", func(t *testing.T) { testForgetAuthor(t, open(t)) })
}

func testCanvasMeta(t *testing.T, s canvas.Store) {
	first := canvas.Meta{ID: uuid.NewString(), Width: 640, Height: 480, CreatedAt: now()}
	got, err := s.CanvasMeta(ctx, first)
	must(t, err)
	if got != first {
		t.Fatalf("first CanvasMeta = %+v, want %+v", got, first)
	}
	// A later server proposing other values gets what is stored.
	got, err = s.CanvasMeta(ctx, canvas.Meta{ID: uuid.NewString(), Width: 10, Height: 10, CreatedAt: now()})
	must(t, err)
	if got != first {
		t.Fatalf("second CanvasMeta = %+v, want the stored %+v", got, first)
	}
}

func placement(seq int64, x, y, color int32, user string, at time.Time) canvas.Placement {
	return canvas.Placement{Seq: seq, X: x, Y: y, Color: color, UserID: user, PlacedAt: at}
}

func testPixelHistory(t *testing.T, s canvas.Store) {
	alice, bob := uuid.NewString(), uuid.NewString()
	t0 := now()
	var rows []canvas.Placement
	for i := range 7 {
		user := alice
		if i%2 == 1 {
			user = bob
		}
		rows = append(rows, placement(int64(10+i*3), 4, 2, int32(i), user, t0.Add(time.Duration(i)*time.Second)))
	}
	// Neighbours of the pixel, in every direction of the key order.
	rows = append(rows, placement(100, 4, 3, 1, alice, t0), placement(101, 3, 2, 1, alice, t0),
		placement(102, 5, 2, 1, alice, t0), placement(103, 4, 1, 1, alice, t0), placement(104, 2, 4, 1, alice, t0))
	must(t, s.AppendPlacements(ctx, rows))

	var seen []canvas.Placement
	before := int64(0)
	for page := 0; ; page++ {
		got, err := s.PixelHistory(ctx, 4, 2, before, 3)
		must(t, err)
		if len(got) == 0 {
			break
		}
		if page > 3 {
			t.Fatal("pages do not end")
		}
		seen = append(seen, got...)
		before = got[len(got)-1].Seq
	}
	if len(seen) != 7 {
		t.Fatalf("history of (4,2): %d placements, want 7: %+v", len(seen), seen)
	}
	for i, p := range seen {
		want := rows[6-i]
		if p != want {
			t.Fatalf("history[%d] = %+v, want %+v (newest first)", i, p, want)
		}
	}
	if got, err := s.PixelHistory(ctx, 9, 9, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("history of an untouched pixel: %v, %v", got, err)
	}
	if got, err := s.PixelHistory(ctx, 4, 2, 10, 10); err != nil || len(got) != 0 {
		t.Fatalf("history before the first placement: %v, %v", got, err)
	}
}

func testAppendIdempotent(t *testing.T, s canvas.Store) {
	u := uuid.NewString()
	p := placement(1, 1, 1, 5, u, now())
	must(t, s.AppendPlacements(ctx, []canvas.Placement{p}))
	// A retried batch (the same rows again, placed_at aside) changes nothing.
	retry := p
	retry.PlacedAt = retry.PlacedAt.Add(time.Second)
	must(t, s.AppendPlacements(ctx, []canvas.Placement{retry, placement(2, 1, 1, 7, u, now())}))
	got, err := s.PixelHistory(ctx, 1, 1, 0, 10)
	must(t, err)
	if len(got) != 2 || got[1] != p || got[0].Color != 7 {
		t.Fatalf("after a retried batch: %+v", got)
	}
	must(t, s.AppendPlacements(ctx, nil))

	// Another placement at a stored seq (a live board that handed the
	// number out again) is refused; the rest of its batch is stored and the
	// first placement stays.
	other := uuid.NewString()
	err = s.AppendPlacements(ctx, []canvas.Placement{placement(1, 1, 1, 9, other, now()), placement(3, 2, 2, 4, other, now())})
	if !errors.Is(err, canvas.ErrSeqTaken) {
		t.Fatalf("a taken seq: got %v, want ErrSeqTaken", err)
	}
	if got, err := s.PixelHistory(ctx, 1, 1, 0, 10); err != nil || len(got) != 2 || got[1] != p {
		t.Fatalf("after a taken seq, pixel (1,1): %+v, %v", got, err)
	}
	if got, err := s.PixelHistory(ctx, 2, 2, 0, 10); err != nil || len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("after a taken seq, the rest of the batch: %+v, %v", got, err)
	}
}

func testAppendConcurrent(t *testing.T, s canvas.Store) {
	const writers, each = 8, 50
	u := uuid.NewString()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []canvas.Placement
			for i := range each {
				batch = append(batch, placement(int64(w*each+i+1), 0, 0, int32(i%16), u, now()))
				if len(batch) == 10 {
					if err := s.AppendPlacements(ctx, batch); err != nil {
						errs <- err
						return
					}
					batch = nil
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.PixelHistory(ctx, 0, 0, 0, writers*each+1)
	must(t, err)
	if len(got) != writers*each {
		t.Fatalf("%d placements stored, want %d", len(got), writers*each)
	}
	for i, p := range got {
		if p.Seq != int64(writers*each-i) {
			t.Fatalf("history[%d].Seq = %d, want %d", i, p.Seq, writers*each-i)
		}
	}
}

func testLatestPixels(t *testing.T, s canvas.Store) {
	u := uuid.NewString()
	t0 := now()
	must(t, s.AppendPlacements(ctx, []canvas.Placement{
		placement(1, 0, 0, 3, u, t0), placement(2, 0, 0, 4, u, t0), placement(5, 0, 0, 2, u, t0), // newest is 5
		placement(3, 7, 1, 9, u, t0), placement(4, 1, 7, 11, u, t0),
		placement(6, 1, 7, 12, u, t0), placement(7, 2000, 1999, 15, u, t0),
	}))
	got := map[[2]int32]canvas.Placement{}
	must(t, s.LatestPixels(ctx, func(p canvas.Placement) error {
		k := [2]int32{p.X, p.Y}
		if _, dup := got[k]; dup {
			t.Errorf("pixel %v reported twice", k)
		}
		got[k] = p
		return nil
	}))
	want := map[[2]int32]int64{{0, 0}: 5, {7, 1}: 3, {1, 7}: 6, {2000, 1999}: 7}
	if len(got) != len(want) {
		t.Fatalf("LatestPixels: %v", got)
	}
	for k, seq := range want {
		if got[k].Seq != seq {
			t.Errorf("latest of %v: seq %d, want %d", k, got[k].Seq, seq)
		}
	}
	if got[[2]int32{0, 0}].Color != 2 {
		t.Errorf("latest colour of (0,0) = %d, want 2", got[[2]int32{0, 0}].Color)
	}
	stop := errors.New("stop")
	if err := s.LatestPixels(ctx, func(canvas.Placement) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error: %v, want it returned", err)
	}
}

func testBans(t *testing.T, s canvas.Store) {
	user, admin := uuid.NewString(), uuid.NewString()
	t0 := now()
	banned, err := s.IsBanned(ctx, user, t0)
	must(t, err)
	if banned {
		t.Fatal("banned before any ban")
	}
	wantErr(t, s.UnbanUser(ctx, user), storeerr.ErrNotFound)
	must(t, s.BanUser(ctx, canvas.Ban{UserID: user, BannedBy: admin, Reason: "spam", BannedAt: t0}))
	must(t, s.BanUser(ctx, canvas.Ban{UserID: user, BannedBy: admin, Reason: "spam again", BannedAt: t0})) // re-ban
	if banned, err = s.IsBanned(ctx, user, t0); err != nil || !banned {
		t.Fatalf("after ban: %v, %v", banned, err)
	}
	if banned, err = s.IsBanned(ctx, uuid.NewString(), t0); err != nil || banned {
		t.Fatalf("another user: %v, %v", banned, err)
	}
	must(t, s.UnbanUser(ctx, user))
	if banned, err = s.IsBanned(ctx, user, t0); err != nil || banned {
		t.Fatalf("after unban: %v, %v", banned, err)
	}
	wantErr(t, s.UnbanUser(ctx, user), storeerr.ErrNotFound)
	// A ban with an expiry holds until then.
	must(t, s.BanUser(ctx, canvas.Ban{UserID: user, BannedBy: admin, BannedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	if banned, _ = s.IsBanned(ctx, user, t0.Add(59*time.Minute)); !banned {
		t.Fatal("expiring ban not in force before its expiry")
	}
	if banned, _ = s.IsBanned(ctx, user, t0.Add(61*time.Minute)); banned {
		t.Fatal("expiring ban still in force after its expiry")
	}
}

// ForgetAuthor keeps a deleted user's pixels (in history and on the rebuilt
// board) under NoAuthor, drops their ban, and leaves others' placements.
func testForgetAuthor(t *testing.T, s canvas.Store) {
	gone, other := uuid.NewString(), uuid.NewString()
	t0 := now()
	must(t, s.AppendPlacements(ctx, []canvas.Placement{
		placement(1, 3, 4, 5, gone, t0),
		placement(2, 3, 4, 6, other, t0),
		placement(3, 7, 8, 9, gone, t0),
	}))
	must(t, s.BanUser(ctx, canvas.Ban{UserID: gone, BannedBy: other, BannedAt: t0}))
	must(t, s.ForgetAuthor(ctx, gone))
	must(t, s.ForgetAuthor(ctx, gone)) // a retry changes nothing

	hist, err := s.PixelHistory(ctx, 3, 4, 0, 10)
	must(t, err)
	if len(hist) != 2 || hist[0].UserID != other || hist[1].UserID != canvas.NoAuthor || hist[1].Color != 5 {
		t.Fatalf("history of (3,4) = %+v", hist)
	}
	latest := map[int64]canvas.Placement{}
	must(t, s.LatestPixels(ctx, func(p canvas.Placement) error { latest[p.Seq] = p; return nil }))
	if p := latest[3]; p.UserID != canvas.NoAuthor || p.Color != 9 || p.X != 7 || p.Y != 8 {
		t.Fatalf("latest of (7,8) = %+v", p)
	}
	if banned, err := s.IsBanned(ctx, gone, t0); err != nil || banned {
		t.Fatalf("ban of a forgotten user: %v, %v", banned, err)
	}
	// A batch retried after its author was forgotten (its first write
	// committed, its answer was lost) is still the same placements, and
	// the retry does not bring the author back.
	must(t, s.AppendPlacements(ctx, []canvas.Placement{placement(3, 7, 8, 9, gone, t0)}))
	hist, err = s.PixelHistory(ctx, 7, 8, 0, 10)
	must(t, err)
	if len(hist) != 1 || hist[0].UserID != canvas.NoAuthor {
		t.Fatalf("history of (7,8) after a retry = %+v", hist)
	}
	if err := s.AppendPlacements(ctx, []canvas.Placement{placement(3, 7, 8, 10, gone, t0)}); !errors.Is(err, canvas.ErrSeqTaken) {
		t.Fatalf("another pixel at a forgotten seq: got %v, want ErrSeqTaken", err)
	}
}
