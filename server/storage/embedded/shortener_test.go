package embedded_test

import (
	"testing"

	"github.com/apiplatform/platform/server/shortener"
	"github.com/apiplatform/platform/server/storage/embedded"
	"github.com/apiplatform/platform/server/storage/storetest"
)

func TestShortenerConformance(t *testing.T) {
	storetest.RunShortener(t, func(t *testing.T) shortener.Store {
		s, err := embedded.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
