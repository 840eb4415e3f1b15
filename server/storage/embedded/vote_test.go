package embedded_test

import (
	"testing"

	"github.com/apiplatform/platform/server/storage/embedded"
	"github.com/apiplatform/platform/server/storage/storetest"
	"github.com/apiplatform/platform/server/vote"
)

func TestVoteConformance(t *testing.T) {
	storetest.RunVote(t, func(t *testing.T) vote.Store {
		s, err := embedded.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
