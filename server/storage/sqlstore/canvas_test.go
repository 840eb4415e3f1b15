package sqlstore

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/apiplatform/platform/server/canvas"
	"github.com/apiplatform/platform/server/storage/storetest"
)

// The canvas store suite, each case on its own fresh database.
func TestCanvasConformance(t *testing.T) {
	storetest.RunCanvas(t, func(t *testing.T) canvas.Store {
		return openFresh(t, Config{})
	})
}

// The schema refuses what the store never writes: a second meta row,
// dimensions that are not positive.
func TestCanvasMetaConstraints(t *testing.T) {
	s := openFresh(t, Config{})
	ctx := context.Background()
	insert := `INSERT INTO canvas_meta (singleton, id, width, height) VALUES ($1, $2, $3, $4)`
	if _, err := s.pool.Exec(ctx, insert, true, uuid.NewString(), 10, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, insert, true, uuid.NewString(), 10, 10); sqlState(err) != codeUniqueViolation {
		t.Errorf("second meta row: %v, want a unique violation", err)
	}
	if _, err := s.pool.Exec(ctx, insert, false, uuid.NewString(), 10, 10); sqlState(err) != "23514" {
		t.Errorf("singleton false: %v, want a check violation", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM canvas_meta`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, insert, true, uuid.NewString(), 0, 10); sqlState(err) != "23514" {
		t.Errorf("zero width: %v, want a check violation", err)
	}
	// A malformed user id is refused before it reaches the database.
	if err := s.AppendPlacements(ctx, []canvas.Placement{{Seq: 1, UserID: "not-a-uuid"}}); err == nil {
		t.Error("placement by a non-UUID user stored")
	}
}
