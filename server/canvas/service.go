// Package canvas implements canvas.v1.CanvasService: a shared board of 16
// colours where each user places one pixel per cooldown (r/place).
//
// Where things live:
//   - the live board (bitmap, sequence numbers, cooldowns, recent delta log)
//     is a Board: Redis when configured, so every replica serves and changes
//     the same one; in process otherwise;
//   - the history of every placement, the bans and the canvas's identity are
//     in the Store (the database): a placement is answered only once its
//     history row is written (group commit), and the board can always be
//     rebuilt from that history;
//   - each replica follows the delta log and cuts it into batches for its
//     streams (feed).
//
// Client protocol. Every placement gets the next global sequence number;
// the snapshot says the sequence number it is current to (seq), and a
// stream batch says the range it covers (first_seq..last_seq, one delta a
// sequence number, contiguous from one batch to the next).
//
//   - Load the snapshot (seq S), then open StreamPixels(after_seq = S) and
//     apply every batch in order: the board held is then the server's board
//     at the last applied sequence number.
//   - Every stream starts with a Heartbeat whose seq is the number it
//     starts after (after_seq, or the current one when "from now"); idle
//     streams get one every Heartbeat period.
//   - Reconnecting with after_seq = the last applied number resumes exactly.
//     A Resync means "reload the snapshot and start over"; it ends the
//     stream. Reasons: after_seq older than what the server keeps (about
//     RetainDeltas), newer than the canvas, the subscriber fell MaxLag
//     behind, or the delta log restarted (Redis lost the board and it was
//     rebuilt from history).
//   - Clients that open the stream first (from now) and load the snapshot
//     afterwards (a CDN copy may be a second or two old) skip batches ending
//     at or below the snapshot's seq; if the stream starts above the
//     snapshot's seq, they reconnect with after_seq = the snapshot's seq.
//     Deltas apply in sequence order only (last write wins), never out of
//     order.
//
// after_seq says "after N" for every N, 0 included (a canvas nothing was
// ever placed on); the older since_seq cannot, as its 0 means "from now".
package canvas

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/config"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// Policies of this service's methods. The board is public (viewers need no
// account, and CDNs cache it); placing needs a session, guests included;
// history and moderation are for admins.
var Policies = auth.Policies{
	canvasv1.CanvasService_GetCanvasInfo_FullMethodName:    auth.Public,
	canvasv1.CanvasService_GetSnapshot_FullMethodName:      auth.Public,
	canvasv1.CanvasService_GetBoard_FullMethodName:         auth.Public,
	canvasv1.CanvasService_GetBoardImage_FullMethodName:    auth.Public,
	canvasv1.CanvasService_StreamPixels_FullMethodName:     auth.Public,
	canvasv1.CanvasService_PlacePixel_FullMethodName:       auth.User,
	canvasv1.CanvasService_GetPixel_FullMethodName:         auth.Public,
	canvasv1.CanvasService_ListPixelHistory_FullMethodName: auth.Admin,
	canvasv1.CanvasService_BanUser_FullMethodName:          auth.Admin,
	canvasv1.CanvasService_UnbanUser_FullMethodName:        auth.Admin,
	canvasv1.CanvasService_ClearRect_FullMethodName:        auth.Admin,
}

// Config of the service. Zero fields take DefaultConfig's values; a board
// without cooldown says Cooldown: NoCooldown.
type Config struct {
	// Width and Height of the board: 1 to MaxSide each, at most MaxPixels
	// in all. Fixed for the life of a canvas: a server refuses to start on
	// a database holding a canvas of other dimensions.
	Width, Height int32
	// Cooldown between two placements of one user.
	Cooldown time.Duration
	// BatchInterval between stream batches: 100ms to 10s.
	BatchInterval time.Duration
	// RetainDeltas is how many recent deltas each replica keeps (and the
	// Redis log holds) for clients resuming a stream; older positions get a
	// resync.
	RetainDeltas int32
	// MaxLag is how long a stream may leave a batch unsent before the
	// subscriber is dropped with a resync.
	MaxLag time.Duration
	// MaxClearArea bounds the pixels of one ClearRect.
	MaxClearArea int32
	// Heartbeat is the longest a stream stays silent: an idle one sends a
	// Heartbeat message then (0: 15s; at least 10ms).
	Heartbeat time.Duration
	// SnapshotMaxAge lets a replica serve a snapshot this old without
	// asking the board whether it changed (0: always ask; the answer is one
	// small read, and the bitmap is fetched only when it changed).
	SnapshotMaxAge time.Duration
	// PixelLookupLimit bounds GetPixel per client address: each lookup is
	// a database read, and a web client asks at most once per pixel it
	// hovers (debounced, cached until a delta changes the pixel).
	PixelLookupLimit ratelimit.Limit
}

// DefaultConfig is what the server runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{
		Width: 1000, Height: 1000, Cooldown: 5 * time.Minute, BatchInterval: time.Second,
		RetainDeltas: 1 << 20, MaxLag: 10 * time.Second, MaxClearArea: 1 << 18,
		PixelLookupLimit: ratelimit.Limit{Rate: 1200, Period: time.Minute, Burst: 300},
	}
}

// NoCooldown as Config.Cooldown lets users place without waiting (a zero
// Cooldown takes the default).
const NoCooldown time.Duration = -1

// Limits of the configuration.
const (
	MaxSide = 4096
	// MaxPixels keeps a snapshot (4 bits a pixel) under gRPC's default 4 MB
	// message limit of clients.
	MaxPixels = 6_000_000
)

func (c Config) validate() error {
	switch {
	case c.Width < 1 || c.Width > MaxSide || c.Height < 1 || c.Height > MaxSide:
		return fmt.Errorf("canvas: width and height must be 1 to %d (got %dx%d)", MaxSide, c.Width, c.Height)
	case int64(c.Width)*int64(c.Height) > MaxPixels:
		return fmt.Errorf("canvas: %dx%d is more than %d pixels", c.Width, c.Height, MaxPixels)
	case c.Cooldown < 0 || c.Cooldown > 24*time.Hour:
		return fmt.Errorf("canvas: cooldown must be 0 to 24h (got %v)", c.Cooldown)
	case c.BatchInterval < 100*time.Millisecond || c.BatchInterval > 10*time.Second:
		return fmt.Errorf("canvas: batch interval must be 100ms to 10s (got %v)", c.BatchInterval)
	case c.RetainDeltas < 1000:
		return fmt.Errorf("canvas: retain at least 1000 deltas (got %d)", c.RetainDeltas)
	case c.Heartbeat != 0 && c.Heartbeat < 10*time.Millisecond:
		return fmt.Errorf("canvas: heartbeat must be at least 10ms (got %v)", c.Heartbeat)
	case c.MaxLag < c.BatchInterval:
		return fmt.Errorf("canvas: max lag (%v) must be at least the batch interval (%v)", c.MaxLag, c.BatchInterval)
	case c.MaxClearArea < 1:
		return fmt.Errorf("canvas: max clear area must be positive (got %d)", c.MaxClearArea)
	case c.SnapshotMaxAge < 0:
		return fmt.Errorf("canvas: snapshot max age must not be negative")
	}
	return nil
}

// Deps are what the service is built on.
type Deps struct {
	Store Store
	// Redis holds the live board when set (production, several replicas);
	// nil keeps it in process.
	Redis redis.UniversalClient
	// Board overrides both (tests, benchmarks).
	Board Board
	// Users lets bans refuse unknown users; nil accepts any id.
	Users Users
	// Limiter bounds public lookups (GetPixel); nil: unlimited.
	Limiter ratelimit.Limiter
	Log     *slog.Logger
}

// Users reads accounts (bans refuse unknown users).
type Users interface {
	GetUser(ctx context.Context, id string) (identity.User, error)
}

// Service implements CanvasService.
type Service struct {
	canvasv1.UnimplementedCanvasServiceServer
	cfg     Config
	w, h    int
	store   Store
	board   Board
	feed    *feed
	history *historyWriter
	users   Users
	limiter ratelimit.Limiter
	log     *slog.Logger
	now     func() time.Time
	info    *canvasv1.GetCanvasInfoResponse

	snaps  singleflight.Group
	snapMu sync.Mutex
	snap   *Snapshot
	snapAt time.Time
	png    cachedPNG
}

// New builds the service: it reads (or creates) the canvas's identity in
// the store, then opens the board and starts following its delta log.
func New(ctx context.Context, d Deps, cfg Config) (*Service, error) {
	config.FillZero(&cfg, DefaultConfig())
	if cfg.Cooldown == NoCooldown {
		cfg.Cooldown = 0
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	meta, err := d.Store.CanvasMeta(ctx, Meta{ID: uuid.NewString(), Width: cfg.Width, Height: cfg.Height, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)})
	if err != nil {
		return nil, fmt.Errorf("canvas: read canvas identity: %w", err)
	}
	if meta.Width != cfg.Width || meta.Height != cfg.Height {
		return nil, fmt.Errorf("canvas: the database holds a %dx%d canvas but %dx%d is configured; resizing is not supported",
			meta.Width, meta.Height, cfg.Width, cfg.Height)
	}
	w, h := int(cfg.Width), int(cfg.Height)
	rebuild := rebuildFrom(d.Store, w, h)
	board := d.Board
	switch {
	case board != nil:
	case d.Redis != nil:
		board = NewRedisBoard(d.Redis, meta.ID, w, h, int(cfg.RetainDeltas), rebuild, d.Log)
	default:
		seq, pixels, err := rebuild(ctx)
		if err != nil {
			return nil, fmt.Errorf("canvas: load board from history: %w", err)
		}
		board = NewMemoryBoard(w, h, seq, pixels, int(cfg.RetainDeltas))
	}
	s := &Service{
		cfg: cfg, w: w, h: h, store: d.Store, board: board, users: d.Users, limiter: d.Limiter, log: d.Log, now: time.Now,
		history: newHistoryWriter(d.Store, 1, 4*MaxRun, 10*time.Second),
		info: &canvasv1.GetCanvasInfoResponse{
			Width: cfg.Width, Height: cfg.Height, Palette: Palette.Hex(),
			CooldownSeconds: int32(cfg.Cooldown / time.Second), BatchIntervalMs: int32(cfg.BatchInterval / time.Millisecond),
			HeartbeatIntervalMs: int32(cfg.Heartbeat / time.Millisecond),
		},
	}
	s.feed = newFeed(board, feedConfig{
		interval: cfg.BatchInterval, retain: int(cfg.RetainDeltas), maxLag: cfg.MaxLag, maxMsg: maxMessageDeltas,
		heartbeat: cfg.Heartbeat,
	}, d.Log)
	return s, nil
}

// maxMessageDeltas bounds one stream message (128 KiB of deltas).
const maxMessageDeltas = 32 << 10

// Register registers the service on a gRPC server.
func (s *Service) Register(gs grpc.ServiceRegistrar) { canvasv1.RegisterCanvasServiceServer(gs, s) }

// Drain ends every open stream with UNAVAILABLE, telling clients to
// reconnect with their after_seq (to another replica): call it when a
// graceful shutdown begins, or long-lived streams hold the shutdown up
// until its timeout.
func (s *Service) Drain() { s.feed.drain() }

// Close stops the streams and lets queued history writes finish. Call it
// once the servers stopped.
func (s *Service) Close() error {
	s.feed.close()
	s.history.close()
	return nil
}

// GetCanvasInfo implements CanvasService.
func (s *Service) GetCanvasInfo(ctx context.Context, _ *canvasv1.GetCanvasInfoRequest) (*canvasv1.GetCanvasInfoResponse, error) {
	return s.info, nil
}
