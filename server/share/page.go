package share

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/apiplatform/platform/server/platform/bus"
	"github.com/apiplatform/platform/server/platform/cache"
	"github.com/apiplatform/platform/server/platform/hotcache"
)

// The public share page is the busiest read of this service, so it is
// answered from this process's memory when it can:
//
//   - share rows, from a hot cache in front of the shared page cache,
//     dropped on every replica over the bus when a share is revoked (and
//     kept at most PageMaxAge, the staleness the page's public max-age
//     allows any CDN anyway, should a broadcast be lost);
//   - the rendered page and its ETag, which depend only on the colour and
//     the kind of share, so they are memoized with nothing to invalidate.
//
// A live share still asks the favorite service for the owner's current
// colour on every view.

// hotTopic carries slugs whose hot copies every replica drops.
const hotTopic = "share.page.invalidate"

const (
	hotSize      = 100_000
	renderedSize = 4096
)

type renderKey struct {
	hex      string
	snapshot bool
}

type renderedPage struct {
	body []byte // shared by every answer: never changed once made
	etag string
}

func (s *Service) openHot(ctx context.Context, d Deps) error {
	b := d.Bus
	if b == nil {
		b = bus.NewMemory()
		s.ownBus = b
	}
	s.bus = b
	var err error
	if s.hot, err = hotcache.New[Share](ctx, b, hotTopic, hotSize, s.cfg.PageMaxAge, d.Log); err != nil {
		return err
	}
	s.rendered, _ = lru.New[renderKey, renderedPage](renderedSize)
	s.hotHits = cache.HitCounter("share_page")
	s.pageCacheControl = "public, max-age=" + strconv.Itoa(int(s.cfg.PageMaxAge.Seconds()))
	return nil
}

// render is the page for a colour and kind of share.
func (s *Service) render(hexColor string, snapshot bool) (renderedPage, error) {
	k := renderKey{hexColor, snapshot}
	if p, ok := s.rendered.Get(k); ok {
		return p, nil
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, struct {
		Hex      string
		Snapshot bool
	}{hexColor, snapshot}); err != nil {
		return renderedPage{}, err
	}
	sum := sha256.Sum256(buf.Bytes())
	p := renderedPage{body: buf.Bytes(), etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	s.rendered.Add(k, p)
	return p, nil
}
