package embedded_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/canvas"
	"github.com/apiplatform/platform/server/storage/embedded"
	"github.com/apiplatform/platform/server/storage/storetest"
)

func TestCanvasConformance(t *testing.T) {
	storetest.RunCanvas(t, func(t *testing.T) canvas.Store {
		s, err := embedded.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// History and bans are on disk: a reopened store has them.
func TestCanvasSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	user := uuid.NewString()
	at := time.Now().UTC().Truncate(time.Microsecond)
	p := canvas.Placement{Seq: 42, X: 3, Y: 4, Color: 7, UserID: user, PlacedAt: at}
	if err := s.AppendPlacements(ctx, []canvas.Placement{p}); err != nil {
		t.Fatal(err)
	}
	if err := s.BanUser(ctx, canvas.Ban{UserID: user, BannedBy: uuid.NewString(), BannedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = embedded.Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.PixelHistory(ctx, 3, 4, 0, 10)
	if err != nil || len(got) != 1 || got[0] != p {
		t.Fatalf("history after reopen: %+v, %v", got, err)
	}
	if banned, err := s.IsBanned(ctx, user, at); err != nil || !banned {
		t.Fatalf("ban after reopen: %v, %v", banned, err)
	}
}
