package sqlstore

import (
	"testing"

	"github.com/apiplatform/platform/server/shortener"
	"github.com/apiplatform/platform/server/storage/storetest"
)

func TestShortenerConformance(t *testing.T) {
	storetest.RunShortener(t, func(t *testing.T) shortener.Store { return openFresh(t, Config{}) })
}
