package share

import (
	"bytes"
	"context"
	"time"

	"google.golang.org/grpc"

	sharev1 "github.com/apiplatform/platform/gen/go/share/v1"
	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/platform/apierr"
)

// watchBuffer is how many unread changes a watcher may fall behind by
// before it is dropped (its client reconnects and reads the colour anew).
const watchBuffer = 16

// WatchShare implements ShareService. A watcher follows two bus topics:
// the owner's favorite changes (every replica publishes them) and the
// share invalidations revocations publish (hotTopic).
func (s *Service) WatchShare(req *sharev1.WatchShareRequest, stream grpc.ServerStreamingServer[sharev1.WatchShareResponse]) error {
	ctx := stream.Context()
	if !slugRE.MatchString(req.GetSlug()) {
		return apierr.InvalidArgument("slug", "must be 1 to 32 letters and digits")
	}
	// Subscribe before reading, so a change in between is not missed.
	favs, err := s.bus.Subscribe(ctx, favorite.ChangedTopic, watchBuffer)
	if err != nil {
		return apierr.Unavailable("watching is not available right now", time.Second)
	}
	defer favs.Close()
	revokes, err := s.bus.Subscribe(ctx, hotTopic, watchBuffer)
	if err != nil {
		return apierr.Unavailable("watching is not available right now", time.Second)
	}
	defer revokes.Close()

	sh, hexColor, err := s.current(ctx, req.GetSlug())
	if err != nil {
		return err
	}
	if err := stream.Send(&sharev1.WatchShareResponse{Hex: hexColor}); err != nil {
		return err
	}
	if sh.Snapshot {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-favs.C:
			if !ok {
				return apierr.Unavailable("watching was interrupted", time.Second)
			}
			if string(m) != sh.OwnerID {
				continue
			}
			h, err := s.favorites.CurrentHex(ctx, sh.OwnerID)
			if err != nil {
				return apierr.FromStorage(ctx, err, "share not found")
			}
			if h == hexColor {
				continue
			}
			hexColor = h
			if err := stream.Send(&sharev1.WatchShareResponse{Hex: hexColor}); err != nil {
				return err
			}
		case m, ok := <-revokes.C:
			if !ok {
				return apierr.Unavailable("watching was interrupted", time.Second)
			}
			if !containsLine(m, sh.Slug) {
				continue
			}
			// Read the stored row, not a cached one the revocation may
			// not have reached yet.
			if _, _, err := s.current(ctx, sh.Slug); err != nil {
				return err
			}
		}
	}
}

// current is the stored share and the colour it shows, without counting a
// hit: watching is not a visit.
func (s *Service) current(ctx context.Context, slug string) (Share, string, error) {
	sh, err := s.store.GetShare(ctx, slug)
	if err != nil {
		return Share{}, "", apierr.FromStorage(ctx, err, "share not found")
	}
	if !sh.RevokedAt.IsZero() || (!sh.ExpiresAt.IsZero() && !s.now().Before(sh.ExpiresAt)) {
		return Share{}, "", apierr.NotFound("share not found")
	}
	hexColor := sh.Hex
	if !sh.Snapshot {
		if hexColor, err = s.favorites.CurrentHex(ctx, sh.OwnerID); err != nil {
			return Share{}, "", apierr.FromStorage(ctx, err, "share not found")
		}
	}
	return sh, hexColor, nil
}

func containsLine(msg []byte, line string) bool {
	for _, l := range bytes.Split(msg, []byte("\n")) {
		if string(l) == line {
			return true
		}
	}
	return false
}
