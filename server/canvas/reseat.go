package canvas

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiplatform/platform/server/platform/apierr"
)

// A live board in Redis can go back in time: Redis replicates
// asynchronously, so a Sentinel failover (or a restart from an old
// snapshot) may promote a copy that lacks the newest placements. Their
// history rows are written and acknowledged, but the board lost them and
// hands their sequence numbers out again. History refuses a number it holds
// for another placement (ErrSeqTaken); the board is then rebuilt from
// history, which holds every acknowledged placement, under a new epoch, so
// streams tell their clients to resync. The placement that met the taken
// number is answered UNAVAILABLE: it is not in history, and the rebuilt
// board does not show it either.

// reseater is a board that can be rebuilt from history on demand.
type reseater interface {
	// reseat rebuilds the board from history if its epoch is still epoch
	// (another replica may have rebuilt it already).
	reseat(ctx context.Context, epoch string) error
}

func (s *Service) reseat(ctx context.Context, placed Placed, cause error) error {
	placements.WithLabelValues("seq_reused").Inc()
	r, ok := s.board.(reseater)
	if !ok { // the in-process board cannot lose writes: a real bug
		return apierr.Internal(ctx, cause)
	}
	s.log.WarnContext(ctx, "canvas: the live board reused a sequence number history holds (redis lost writes); rebuilding it from history",
		"first", placed.First, "last", placed.Last, "epoch", placed.Epoch)
	if err := r.reseat(context.WithoutCancel(ctx), placed.Epoch); err != nil {
		s.log.ErrorContext(ctx, "canvas: rebuilding the live board failed", "err", err)
	}
	return apierr.Unavailable("the live board was behind its history and has been rebuilt; place the pixel again", time.Second)
}

// resetScript: KEYS seq, epoch; ARGV epoch. Drops the board's sequence and
// epoch if the epoch is still ARGV[1], so the next ensure rebuilds it.
var resetScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
`)

func (b *redisBoard) reseat(ctx context.Context, epoch string) error {
	if err := resetScript.Run(ctx, b.c, []string{b.key("seq"), b.key("epoch")}, epoch).Err(); err != nil {
		return fmt.Errorf("canvas: reset board: %w", b.wrap(ctx, err))
	}
	return b.ensure(ctx)
}
