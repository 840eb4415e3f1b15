package embedded_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/favorite/color"
	"github.com/apiplatform/platform/server/storage/embedded"
	"github.com/apiplatform/platform/server/storage/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		s, err := embedded.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return storetest.Stores{Identity: s, Favorite: s, Share: s}
	})
}

// What was committed is there after the file is closed and reopened.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := favorite.Favorite{UserID: uuid.NewString(), Hex: "#ABCDEF", Space: color.SpaceHex, Value: "#ABCDEF", UpdatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if _, err := s.SaveFavorite(ctx, f, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetFavorite(ctx, f.UserID)
	if err != nil || got != f {
		t.Fatalf("after reopen: %+v, %v; want %+v", got, err, f)
	}
}
