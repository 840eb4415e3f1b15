package canvas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// redisBoard keeps the board in Redis so every replica serves and changes
// the same one:
//
//	canvas:{id}:board  the bitmap, written with BITFIELD SET u4 #i (pixel i
//	                   at bits 4i..4i+3, so the string is the snapshot as is)
//	canvas:{id}:seq    the last sequence number
//	canvas:{id}:epoch  changes when the board is rebuilt from history
//	canvas:{id}:log    a stream of runs, ID "<first seq>-0", trimmed (exactly) by MINID
//	canvas:{id}:cd:<user>  a cooldown, expiring by itself (SET NX PX)
//
// The {id} hash tag keeps them in one Cluster slot, which is what lets one
// Lua script change them all atomically. id is the canvas id the database
// keeps, so a Redis shared by several databases (or test runs) never mixes
// their boards.
//
// A Redis that lost its data (restart without persistence, failover to an
// empty replica) has no seq key: placements are refused until the board is
// rebuilt from the history in the database, in a new epoch.
type redisBoard struct {
	c       redis.UniversalClient
	prefix  string
	n       int // pixels
	bytes   int // bitmap size
	retain  int
	rebuild Rebuild
	log     *slog.Logger
	init    singleflight.Group
}

// NewRedisBoard returns the board of canvas id (w×h pixels) in Redis. The
// log keeps about retain deltas; rebuild gives the board from history when
// Redis has none.
func NewRedisBoard(c redis.UniversalClient, id string, w, h, retain int, rebuild Rebuild, log *slog.Logger) Board {
	return &redisBoard{
		c: c, prefix: "canvas:{" + id + "}:", n: w * h, bytes: boardBytes(w, h),
		retain: retain, rebuild: rebuild, log: log,
	}
}

func (b *redisBoard) key(k string) string { return b.prefix + k }

// placeScript: KEYS seq, board, log, epoch, cooldown; ARGV cooldown ms,
// retain, packed deltas, then pixel index and colour pairs. Returns
// {first, last, epoch}, {-1, pttl} when cooling down, {-2} when
// uninitialised.
var placeScript = redis.NewScript(`
local epoch = redis.call('GET', KEYS[4])
if not epoch or redis.call('EXISTS', KEYS[1]) == 0 then return {-2} end
local cd = tonumber(ARGV[1])
if cd > 0 and not redis.call('SET', KEYS[5], '1', 'NX', 'PX', cd) then
  return {-1, redis.call('PTTL', KEYS[5])}
end
local n = (#ARGV - 3) / 2
local last = redis.call('INCRBY', KEYS[1], n)
local first = last - n + 1
local i = 4
while i <= #ARGV do
  local args = {}
  while i <= #ARGV and #args < 2000 do
    args[#args+1] = 'SET'
    args[#args+1] = 'u4'
    args[#args+1] = '#' .. ARGV[i]
    args[#args+1] = ARGV[i+1]
    i = i + 2
  end
  redis.call('BITFIELD', KEYS[2], unpack(args))
end
local minid = first - tonumber(ARGV[2])
if minid < 0 then minid = 0 end
redis.call('XADD', KEYS[3], 'MINID', string.format('%d', minid), string.format('%d-0', first), 'd', ARGV[3], 'e', epoch)
return {first, last, epoch}
`)

// initScript: KEYS seq, board, log, epoch; ARGV seq, bitmap, epoch. Sets
// the board unless another replica did first; returns the epoch in force.
var initScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[4])
if cur and redis.call('EXISTS', KEYS[1]) == 1 then return cur end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[4], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[3]
`)

// errUninitialised: Redis has no board (yet, or any more).
var errUninitialised = errors.New("canvas: board not initialised in redis")

func (b *redisBoard) Place(ctx context.Context, op PlaceOp) (Placed, error) {
	p, err := b.place(ctx, op)
	if errors.Is(err, errUninitialised) {
		if err = b.ensure(ctx); err != nil {
			return Placed{}, err
		}
		p, err = b.place(ctx, op)
	}
	return p, err
}

func (b *redisBoard) place(ctx context.Context, op PlaceOp) (Placed, error) {
	n := len(op.Deltas) / DeltaSize
	args := make([]any, 0, 3+2*n)
	args = append(args, op.Cooldown.Milliseconds(), b.retain, op.Deltas[:n*DeltaSize])
	for i := 0; i < n; i++ {
		idx, c := UnpackDelta(op.Deltas[i*DeltaSize:])
		args = append(args, idx, c)
	}
	if op.Cooldown > 0 && op.Cooldown < time.Millisecond {
		args[0] = 1
	}
	keys := []string{b.key("seq"), b.key("board"), b.key("log"), b.key("epoch"), b.key("cd:" + op.UserID)}
	raw, err := placeScript.Run(ctx, b.c, keys, args...).Slice()
	if err != nil {
		return Placed{}, b.wrap(ctx, err)
	}
	res := make([]int64, 0, 2)
	for _, v := range raw {
		if n, ok := v.(int64); ok {
			res = append(res, n)
		}
	}
	switch {
	case len(res) == 1 && res[0] == -2:
		return Placed{}, errUninitialised
	case len(res) == 2 && res[0] == -1:
		// PTTL is -2/-1 only if the key vanished in between: let the
		// client retry at once rather than tell it nonsense.
		return Placed{}, &CooldownError{RetryAfter: time.Duration(max(res[1], 1)) * time.Millisecond}
	case len(res) == 2 && len(raw) == 3 && res[0] > 0:
		epoch, _ := raw[2].(string)
		return Placed{First: res[0], Last: res[1], Epoch: epoch}, nil
	}
	return Placed{}, fmt.Errorf("canvas: unexpected place script reply %v", raw)
}

// ensure rebuilds the board from history when Redis has none. Replicas
// racing here each compute it; the script keeps the first.
func (b *redisBoard) ensure(ctx context.Context) error {
	_, err, _ := b.init.Do("init", func() (any, error) {
		n, err := b.c.Exists(ctx, b.key("seq"), b.key("epoch")).Result()
		if err != nil {
			return nil, b.wrap(ctx, err)
		}
		if n == 2 {
			return nil, nil
		}
		seq, pixels, err := b.rebuild(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: rebuild from history: %w", ErrUnavailable, err)
		}
		epoch := newEpoch()
		keys := []string{b.key("seq"), b.key("board"), b.key("log"), b.key("epoch")}
		got, err := initScript.Run(ctx, b.c, keys, seq, pixels, epoch).Text()
		if err != nil {
			return nil, b.wrap(ctx, err)
		}
		if got == epoch {
			b.log.Info("canvas: board rebuilt from history into redis", "seq", seq, "epoch", epoch)
		}
		return nil, nil
	})
	return err
}

func (b *redisBoard) Snapshot(ctx context.Context) (Snapshot, error) {
	s, err := b.snapshot(ctx)
	if errors.Is(err, errUninitialised) {
		if err = b.ensure(ctx); err != nil {
			return Snapshot{}, err
		}
		s, err = b.snapshot(ctx)
	}
	return s, err
}

func (b *redisBoard) snapshot(ctx context.Context) (Snapshot, error) {
	var seq, epoch, board *redis.StringCmd
	// MULTI/EXEC: no placement script runs between the three reads.
	_, err := b.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		seq = p.Get(ctx, b.key("seq"))
		epoch = p.Get(ctx, b.key("epoch"))
		board = p.Get(ctx, b.key("board"))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Snapshot{}, b.wrap(ctx, err)
	}
	if seq.Err() != nil || epoch.Err() != nil {
		return Snapshot{}, errUninitialised
	}
	n, err := seq.Int64()
	if err != nil {
		return Snapshot{}, err
	}
	raw, _ := board.Bytes() // absent: all white
	pixels := make([]byte, b.bytes)
	copy(pixels, raw)
	return Snapshot{Epoch: epoch.Val(), Seq: n, Pixels: pixels}, nil
}

func (b *redisBoard) Head(ctx context.Context) (int64, string, error) {
	for attempt := 0; ; attempt++ {
		vals, err := b.c.MGet(ctx, b.key("seq"), b.key("epoch")).Result()
		if err != nil {
			return 0, "", b.wrap(ctx, err)
		}
		s, ok1 := vals[0].(string)
		e, ok2 := vals[1].(string)
		if ok1 && ok2 {
			seq, err := strconv.ParseInt(s, 10, 64)
			return seq, e, err
		}
		if attempt > 0 {
			return 0, "", fmt.Errorf("%w: board vanished again after its rebuild", ErrUnavailable)
		}
		if err := b.ensure(ctx); err != nil {
			return 0, "", err
		}
	}
}

// maxBlock bounds one blocking read of the log. go-redis does not interrupt
// a blocked read when ctx is cancelled, so a long wait is a series of short
// reads: a cancelled Tail (a closing feed, a server stopping) returns
// within maxBlock rather than at the end of its wait.
const maxBlock = 100 * time.Millisecond

func (b *redisBoard) Tail(ctx context.Context, after int64, maxDeltas int, wait time.Duration) ([]Run, error) {
	end := time.Now().Add(wait)
	// Entries are runs of up to MaxRun deltas; asking for entries by the
	// delta budget keeps replies bounded either way.
	count := max(int64(maxDeltas)/8, 1)
	for {
		block := time.Duration(-1) // no BLOCK
		if wait > 0 {
			left := time.Until(end)
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < left {
				if left = time.Until(dl); left <= 0 {
					<-ctx.Done() // due now: the wait ends with ctx, as promised
					return nil, ctx.Err()
				}
			} else if left <= 0 {
				return nil, nil
			}
			block = max(min(left, maxBlock), time.Millisecond)
		}
		res, err := b.c.XRead(ctx, &redis.XReadArgs{
			Streams: []string{b.key("log"), strconv.FormatInt(max(after, 0), 10) + "-0"},
			Count:   count, Block: block,
		}).Result()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case errors.Is(err, redis.Nil) && wait > 0:
			continue // BLOCK counts whole milliseconds; the top sees what is left
		case errors.Is(err, redis.Nil):
			return nil, nil
		case err != nil:
			return nil, b.wrap(ctx, err)
		}
		return logRuns(res, maxDeltas)
	}
}

// logRuns decodes XREAD's entries into runs, up to maxDeltas' worth.
func logRuns(res []redis.XStream, maxDeltas int) ([]Run, error) {
	var runs []Run
	total := 0
	for _, st := range res {
		for _, m := range st.Messages {
			id, _, _ := strings.Cut(m.ID, "-")
			first, err := strconv.ParseInt(id, 10, 64)
			d, _ := m.Values["d"].(string)
			e, _ := m.Values["e"].(string)
			if err != nil || len(d)%DeltaSize != 0 || len(d) == 0 {
				return nil, fmt.Errorf("canvas: malformed log entry %q", m.ID)
			}
			runs = append(runs, Run{Epoch: e, First: first, Deltas: []byte(d)})
			if total += len(d) / DeltaSize; total >= maxDeltas {
				return runs, nil
			}
		}
	}
	return runs, nil
}

// wrap marks failures to reach Redis as ErrUnavailable; replies Redis
// itself refused (a script bug) stay as they are.
func (b *redisBoard) wrap(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "BUSY"} {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		}
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
