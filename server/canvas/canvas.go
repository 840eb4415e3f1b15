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
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/identity"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/config"
	"github.com/apiplatform/platform/server/platform/text"
	"github.com/apiplatform/platform/server/platform/wire"
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
}

// DefaultConfig is what the server runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{
		Width: 1000, Height: 1000, Cooldown: 5 * time.Minute, BatchInterval: time.Second,
		RetainDeltas: 1 << 20, MaxLag: 10 * time.Second, MaxClearArea: 1 << 18,
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
	Log   *slog.Logger
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
	log     *slog.Logger
	now     func() time.Time
	info    *canvasv1.GetCanvasInfoResponse

	snaps  singleflight.Group
	snapMu sync.Mutex
	snap   *Snapshot
	snapAt time.Time
	png    cachedPNG
}

type cachedPNG struct {
	etag string
	data []byte
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
		cfg: cfg, w: w, h: h, store: d.Store, board: board, users: d.Users, log: d.Log, now: time.Now,
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

// snapshot returns a recent board: the cached one while the board has not
// moved on, else a fresh read (one per replica at a time). With the board
// unreachable it serves the last one it had, or the board rebuilt from
// history: viewers keep a board while placements are refused.
func (s *Service) snapshot(ctx context.Context) (*Snapshot, error) {
	s.snapMu.Lock()
	cur, at := s.snap, s.snapAt
	s.snapMu.Unlock()
	if cur != nil && s.cfg.SnapshotMaxAge > 0 && s.now().Sub(at) < s.cfg.SnapshotMaxAge {
		return cur, nil
	}
	v, err, _ := s.snaps.Do("snapshot", func() (any, error) {
		// Detached: one caller giving up must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if cur != nil {
			seq, epoch, err := s.board.Head(ctx)
			if err != nil {
				return nil, err
			}
			if seq == cur.Seq && epoch == cur.Epoch {
				s.keepSnapshot(cur)
				return cur, nil
			}
		}
		snap, err := s.board.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		s.keepSnapshot(&snap)
		return &snap, nil
	})
	if err == nil {
		return v.(*Snapshot), nil
	}
	if !errors.Is(err, ErrUnavailable) {
		return nil, apierr.Internal(ctx, err)
	}
	if cur != nil {
		return cur, nil
	}
	v, err, _ = s.snaps.Do("history", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		seq, pixels, err := rebuildFrom(s.store, s.w, s.h)(ctx)
		if err != nil {
			return nil, err
		}
		return &Snapshot{Epoch: "history", Seq: seq, Pixels: pixels}, nil
	})
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	return v.(*Snapshot), nil
}

func (s *Service) keepSnapshot(snap *Snapshot) {
	s.snapMu.Lock()
	if s.snap == nil || snap.Epoch != s.snap.Epoch || snap.Seq >= s.snap.Seq {
		s.snap, s.snapAt = snap, s.now()
	}
	s.snapMu.Unlock()
}

// GetSnapshot implements CanvasService.
func (s *Service) GetSnapshot(ctx context.Context, _ *canvasv1.GetSnapshotRequest) (*canvasv1.GetSnapshotResponse, error) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	wire.SetHeader(ctx, "x-canvas-seq", strconv.FormatInt(snap.Seq, 10))
	return &canvasv1.GetSnapshotResponse{Width: s.cfg.Width, Height: s.cfg.Height, Seq: snap.Seq, Pixels: snap.Pixels}, nil
}

// boardCacheControl lets a CDN serve one copy to everyone for a second,
// and a second more while it refetches.
const boardCacheControl = "max-age=1, stale-while-revalidate=1"

func etagOf(snap *Snapshot, kind string) string {
	return `"` + snap.Epoch + "." + strconv.FormatInt(snap.Seq, 10) + kind + `"`
}

// boardHeaders sets the cache headers of a board representation and tells
// whether the client's copy is current (answer 304 then).
func boardHeaders(ctx context.Context, snap *Snapshot, etag string) (notModified bool) {
	wire.SetHeader(ctx, "cache-control", boardCacheControl)
	wire.SetHeader(ctx, "x-canvas-seq", strconv.FormatInt(snap.Seq, 10))
	return wire.NotModified(ctx, etag)
}

// GetBoard implements CanvasService.
func (s *Service) GetBoard(ctx context.Context, _ *canvasv1.GetBoardRequest) (*httpbody.HttpBody, error) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	const ct = "application/octet-stream"
	if boardHeaders(ctx, snap, etagOf(snap, "")) {
		return &httpbody.HttpBody{ContentType: ct}, nil
	}
	return &httpbody.HttpBody{ContentType: ct, Data: snap.Pixels}, nil
}

// GetBoardImage implements CanvasService.
func (s *Service) GetBoardImage(ctx context.Context, _ *canvasv1.GetBoardImageRequest) (*httpbody.HttpBody, error) {
	snap, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	const ct = "image/png"
	etag := etagOf(snap, ".png")
	if boardHeaders(ctx, snap, etag) {
		return &httpbody.HttpBody{ContentType: ct}, nil
	}
	s.snapMu.Lock()
	cached := s.png
	s.snapMu.Unlock()
	if cached.etag == etag {
		return &httpbody.HttpBody{ContentType: ct, Data: cached.data}, nil
	}
	v, err, _ := s.snaps.Do("png:"+etag, func() (any, error) {
		data, err := EncodePNG(snap.Pixels, s.w, s.h)
		if err == nil {
			s.snapMu.Lock()
			s.png = cachedPNG{etag: etag, data: data}
			s.snapMu.Unlock()
		}
		return data, err
	})
	if err != nil {
		return nil, apierr.Internal(ctx, err)
	}
	return &httpbody.HttpBody{ContentType: ct, Data: v.([]byte)}, nil
}

func (s *Service) checkXY(v *apierr.Validator, x, y int32) {
	v.Check(x >= 0 && int(x) < s.w, "x", fmt.Sprintf("must be 0 to %d", s.w-1))
	v.Check(y >= 0 && int(y) < s.h, "y", fmt.Sprintf("must be 0 to %d", s.h-1))
}

func checkColor(v *apierr.Validator, c int32) {
	v.Check(c >= 0 && c < int32(len(Palette)), "color", fmt.Sprintf("must be a palette index, 0 to %d", len(Palette)-1))
}

// PlacePixel implements CanvasService.
func (s *Service) PlacePixel(ctx context.Context, req *canvasv1.PlacePixelRequest) (*canvasv1.PlacePixelResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	var v apierr.Validator
	s.checkXY(&v, req.GetX(), req.GetY())
	checkColor(&v, req.GetColor())
	if err := v.Err(); err != nil {
		placements.WithLabelValues("invalid").Inc()
		return nil, err
	}
	if err := s.checkBan(ctx, p.UserID); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	idx := int(req.GetY())*s.w + int(req.GetX())
	placed, err := s.board.Place(ctx, PlaceOp{UserID: p.UserID, Cooldown: s.cfg.Cooldown, Deltas: PackDelta(nil, idx, req.GetColor())})
	if err != nil {
		return nil, s.placeError(ctx, err)
	}
	row := Placement{Seq: placed.First, X: req.GetX(), Y: req.GetY(), Color: req.GetColor(), UserID: p.UserID, PlacedAt: now.Truncate(time.Microsecond)}
	if err := s.history.write(ctx, []Placement{row}); err != nil {
		return nil, s.historyError(ctx, placed, err)
	}
	placements.WithLabelValues("placed").Inc()
	return &canvasv1.PlacePixelResponse{Seq: placed.First, NextPlacementTime: timestamppb.New(now.Add(s.cfg.Cooldown))}, nil
}

func (s *Service) checkBan(ctx context.Context, userID string) error {
	banned, err := s.store.IsBanned(ctx, userID, s.now())
	if err != nil {
		return apierr.FromStorage(ctx, err, "")
	}
	if banned {
		placements.WithLabelValues("banned").Inc()
		return apierr.PermissionDenied("you are banned from the canvas")
	}
	return nil
}

func (s *Service) placeError(ctx context.Context, err error) error {
	var cd *CooldownError
	switch {
	case errors.As(err, &cd):
		placements.WithLabelValues("cooldown").Inc()
		secs := int64((cd.RetryAfter + time.Second - 1) / time.Second)
		return apierr.ResourceExhausted(fmt.Sprintf("one pixel per %v: you may place again in %d s", s.cfg.Cooldown, secs), "CANVAS_COOLDOWN", cd.RetryAfter)
	case errors.Is(err, ErrUnavailable):
		placements.WithLabelValues("unavailable").Inc()
		s.log.WarnContext(ctx, "canvas: placement refused, board unreachable", "err", err)
		return apierr.Unavailable("placements are paused: the live board is unreachable; the board and its history stay readable", 5*time.Second)
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	}
	return apierr.Internal(ctx, err)
}

// historyError answers a placement whose history row could not be written.
// The pixel is on the board already: the client is told it failed, which
// is the truth for the history the acknowledgement promises.
func (s *Service) historyError(ctx context.Context, placed Placed, err error) error {
	if errors.Is(err, ErrSeqTaken) {
		return s.reseat(ctx, placed, err)
	}
	placements.WithLabelValues("history_failed").Inc()
	if ctx.Err() != nil { // the caller gave up; the write may still land
		return status.FromContextError(ctx.Err()).Err()
	}
	s.log.ErrorContext(ctx, "canvas: placement applied to the board but its history row was not written", "err", err)
	return apierr.FromStorage(ctx, err, "")
}

// StreamPixels implements CanvasService.
func (s *Service) StreamPixels(req *canvasv1.StreamPixelsRequest, stream canvasv1.CanvasService_StreamPixelsServer) error {
	after, err := streamStart(req)
	if err != nil {
		return err
	}
	ctx := stream.Context()
	err = s.feed.serve(ctx, after, stream.Send)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unavailable, "stream interrupted")
}

// ListPixelHistory implements CanvasService.
func (s *Service) ListPixelHistory(ctx context.Context, req *canvasv1.ListPixelHistoryRequest) (*canvasv1.ListPixelHistoryResponse, error) {
	var v apierr.Validator
	s.checkXY(&v, req.GetX(), req.GetY())
	size := int(req.GetPageSize())
	v.Check(size >= 0 && size <= 100, "page_size", "must be 0 to 100")
	before, ok := decodeCursor(req.GetPageToken())
	v.Check(ok, "page_token", "is not a token this API returned")
	if err := v.Err(); err != nil {
		return nil, err
	}
	if size == 0 {
		size = 50
	}
	// One extra row tells whether there is a next page.
	rows, err := s.store.PixelHistory(ctx, req.GetX(), req.GetY(), before, size+1)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	resp := &canvasv1.ListPixelHistoryResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = encodeCursor(rows[size-1].Seq)
	}
	for _, r := range rows {
		resp.Placements = append(resp.Placements, &canvasv1.Placement{
			Seq: r.Seq, X: r.X, Y: r.Y, Color: r.Color, UserId: r.UserID, Time: timestamppb.New(r.PlacedAt),
		})
	}
	return resp, nil
}

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10)))
}

func decodeCursor(tok string) (int64, bool) {
	if tok == "" {
		return 0, true
	}
	if len(tok) > 32 {
		return 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	seq, err := strconv.ParseInt(string(b), 10, 64)
	return seq, err == nil && seq > 0
}

// checkUserID validates a user id field and returns its canonical form.
func checkUserID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", apierr.InvalidArgument("user_id", "must be a user id (a UUID)")
	}
	return u.String(), nil
}

const maxReasonRunes = 500

// BanUser implements CanvasService.
func (s *Service) BanUser(ctx context.Context, req *canvasv1.BanUserRequest) (*canvasv1.BanUserResponse, error) {
	admin, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	userID, err := checkUserID(req.GetUserId())
	if err != nil {
		return nil, err
	}
	if r := req.GetReason(); utf8.RuneCountInString(r) > maxReasonRunes {
		return nil, apierr.InvalidArgument("reason", fmt.Sprintf("must be at most %d characters", maxReasonRunes))
	} else if p := text.DisplayProblem(r); p != "" {
		return nil, apierr.InvalidArgument("reason", p)
	}
	if s.users != nil {
		if _, err := s.users.GetUser(ctx, userID); err != nil {
			return nil, apierr.FromStorage(ctx, err, "no such user")
		}
	}
	err = s.store.BanUser(ctx, Ban{UserID: userID, BannedBy: admin.UserID, Reason: req.GetReason(), BannedAt: s.now().UTC().Truncate(time.Microsecond)})
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	s.log.InfoContext(ctx, "canvas: user banned", "user", userID, "by", admin.UserID)
	return &canvasv1.BanUserResponse{}, nil
}

// UnbanUser implements CanvasService.
func (s *Service) UnbanUser(ctx context.Context, req *canvasv1.UnbanUserRequest) (*canvasv1.UnbanUserResponse, error) {
	userID, err := checkUserID(req.GetUserId())
	if err != nil {
		return nil, err
	}
	if err := s.store.UnbanUser(ctx, userID); err != nil {
		return nil, apierr.FromStorage(ctx, err, "user is not banned")
	}
	return &canvasv1.UnbanUserResponse{}, nil
}

// ClearRect implements CanvasService. The rectangle is placed in chunks of
// MaxRun pixels, each atomic and in history before the next; other users'
// placements may land between chunks (and win over the clear where they
// come later). If a chunk fails, the chunks before it stay applied:
// repeating the call finishes the job.
func (s *Service) ClearRect(ctx context.Context, req *canvasv1.ClearRectRequest) (*canvasv1.ClearRectResponse, error) {
	admin, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	x, y, rw, rh := int64(req.GetX()), int64(req.GetY()), int64(req.GetWidth()), int64(req.GetHeight())
	var v apierr.Validator
	s.checkXY(&v, req.GetX(), req.GetY())
	v.Check(rw >= 1 && x+rw <= int64(s.w), "width", fmt.Sprintf("must be at least 1, with x+width at most %d", s.w))
	v.Check(rh >= 1 && y+rh <= int64(s.h), "height", fmt.Sprintf("must be at least 1, with y+height at most %d", s.h))
	checkColor(&v, req.GetColor())
	if rw >= 1 && rh >= 1 {
		v.Check(rw*rh <= int64(s.cfg.MaxClearArea), "width", fmt.Sprintf("width×height must be at most %d pixels", s.cfg.MaxClearArea))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	resp := &canvasv1.ClearRectResponse{}
	deltas := make([]byte, 0, MaxRun*DeltaSize)
	rows := make([]Placement, 0, MaxRun)
	flush := func() error {
		placed, err := s.board.Place(ctx, PlaceOp{UserID: admin.UserID, Deltas: deltas})
		if err != nil {
			return s.placeError(ctx, err)
		}
		for i := range rows {
			rows[i].Seq = placed.First + int64(i)
		}
		if err := s.history.write(ctx, rows); err != nil {
			return s.historyError(ctx, placed, err)
		}
		if resp.FirstSeq == 0 {
			resp.FirstSeq = placed.First
		}
		resp.LastSeq = placed.Last
		deltas, rows = deltas[:0], rows[:0]
		return nil
	}
	for py := y; py < y+rh; py++ {
		for px := x; px < x+rw; px++ {
			deltas = PackDelta(deltas, int(py)*s.w+int(px), req.GetColor())
			rows = append(rows, Placement{X: int32(px), Y: int32(py), Color: req.GetColor(), UserID: admin.UserID, PlacedAt: now})
			if len(rows) == MaxRun {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(rows) > 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	s.log.InfoContext(ctx, "canvas: rectangle cleared", "by", admin.UserID, "x", x, "y", y, "width", rw, "height", rh,
		"first_seq", resp.FirstSeq, "last_seq", resp.LastSeq)
	return resp, nil
}
