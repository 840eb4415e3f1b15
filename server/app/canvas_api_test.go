package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/canvas"
)

// canvasAPI is the canvas service through one public surface; the cases
// run on both (canvasGRPC, canvasREST).
type canvasAPI interface {
	name() string
	guest(t *testing.T) (userID, token string)
	info(t *testing.T) (*canvasv1.GetCanvasInfoResponse, error)
	place(t *testing.T, token string, x, y, color int32) (*canvasv1.PlacePixelResponse, error)
	snapshot(t *testing.T) (*canvasv1.GetSnapshotResponse, error)
	// board is GET /api/v1/canvas (GetBoard): the bytes, and the headers
	// that came with them; ifNoneMatch is sent when set.
	board(t *testing.T, ifNoneMatch string) (canvasBoard, error)
	png(t *testing.T) (canvasBoard, error)
	history(t *testing.T, token string, x, y, pageSize int32, pageToken string) (*canvasv1.ListPixelHistoryResponse, error)
	// pixel is GetPixel, called with token (empty: anonymous).
	pixel(t *testing.T, token string, x, y int32) (*canvasv1.GetPixelResponse, error)
	ban(t *testing.T, token, userID, reason string) error
	unban(t *testing.T, token, userID string) error
	clear(t *testing.T, token string, x, y, w, h, color int32) (*canvasv1.ClearRectResponse, error)
	// stream opens StreamPixels with since_seq (0: from now); it is
	// closed when the test ends.
	stream(t *testing.T, since int64) (canvasStream, error)
	// streamAfter opens StreamPixels with after_seq (0 included).
	streamAfter(t *testing.T, after int64) (canvasStream, error)
}

type canvasBoard struct {
	data                        []byte
	contentType, etag, cacheCtl string
	seq                         int64
	notModified                 bool
}

// canvasStream yields the stream's messages; next returns io.EOF when the
// server ended the stream.
type canvasStream interface {
	next() (*canvasv1.StreamPixelsResponse, error)
	close()
}

// canvasConfig is a small, fast canvas for tests: 64×48 (not square, so a
// swapped x and y shows), batches every 100 ms.
func canvasConfig() canvas.Config {
	c := canvas.DefaultConfig()
	c.Width, c.Height = 64, 48
	c.BatchInterval = 100 * time.Millisecond
	c.MaxLag = 2 * time.Second
	return c
}

const canvasAdmin, canvasAdminPassword = "canvas-admin", "correct horse battery staple"

// startCanvas runs a server with the canvas config and an admin account.
func startCanvas(t *testing.T, b backend, configure func(*app.Config)) *platform {
	t.Helper()
	return start(t, b, func(cfg *app.Config) {
		cfg.Canvas = canvasConfig()
		cfg.AdminUser, cfg.AdminPassword = canvasAdmin, canvasAdminPassword
		if configure != nil {
			configure(cfg)
		}
	})
}

// canvasClients are gRPC, REST with newline-delimited JSON, and REST with
// Server-Sent Events (canvas_sse_test.go).
func canvasClients(p *platform) []canvasAPI {
	return []canvasAPI{canvasGRPC{grpcAPI{p}}, canvasREST{newREST(p)}, canvasSSE{canvasREST{newREST(p)}}}
}

// adminLogin logs the configured admin in over gRPC.
func adminLogin(t *testing.T, p *platform) (userID, token string) {
	t.Helper()
	res, err := identityv1.NewIdentityServiceClient(p.conn).Login(context.Background(),
		&identityv1.LoginRequest{Username: canvasAdmin, Password: canvasAdminPassword})
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	return res.GetUser().GetId(), res.GetSession().GetAccessToken()
}

// ---- gRPC ----

type canvasGRPC struct{ g grpcAPI }

func (c canvasGRPC) name() string { return "grpc" }

func (c canvasGRPC) client() canvasv1.CanvasServiceClient {
	return canvasv1.NewCanvasServiceClient(c.g.p.conn)
}

func (c canvasGRPC) guest(t *testing.T) (string, string) { return c.g.guest(t) }

func (c canvasGRPC) info(t *testing.T) (*canvasv1.GetCanvasInfoResponse, error) {
	return c.client().GetCanvasInfo(c.g.ctx(""), &canvasv1.GetCanvasInfoRequest{})
}

func (c canvasGRPC) place(t *testing.T, token string, x, y, color int32) (*canvasv1.PlacePixelResponse, error) {
	return c.client().PlacePixel(c.g.ctx(token), &canvasv1.PlacePixelRequest{X: x, Y: y, Color: color})
}

func (c canvasGRPC) snapshot(t *testing.T) (*canvasv1.GetSnapshotResponse, error) {
	return c.client().GetSnapshot(c.g.ctx(""), &canvasv1.GetSnapshotRequest{})
}

func (c canvasGRPC) boardLike(t *testing.T, ifNoneMatch string, png bool) (canvasBoard, error) {
	var kv []string
	if ifNoneMatch != "" {
		kv = []string{"if-none-match", ifNoneMatch}
	}
	var md metadata.MD
	ctx := c.g.ctx("", kv...)
	var body interface {
		GetData() []byte
		GetContentType() string
	}
	var err error
	if png {
		body, err = c.client().GetBoardImage(ctx, &canvasv1.GetBoardImageRequest{}, grpc.Header(&md))
	} else {
		body, err = c.client().GetBoard(ctx, &canvasv1.GetBoardRequest{}, grpc.Header(&md))
	}
	if err != nil {
		return canvasBoard{}, err
	}
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	seq, _ := strconv.ParseInt(first("x-canvas-seq"), 10, 64)
	return canvasBoard{
		data: body.GetData(), contentType: body.GetContentType(), etag: first("etag"), cacheCtl: first("cache-control"),
		seq: seq, notModified: first("x-http-code") == "304",
	}, nil
}

func (c canvasGRPC) board(t *testing.T, ifNoneMatch string) (canvasBoard, error) {
	return c.boardLike(t, ifNoneMatch, false)
}

func (c canvasGRPC) png(t *testing.T) (canvasBoard, error) { return c.boardLike(t, "", true) }

func (c canvasGRPC) history(t *testing.T, token string, x, y, size int32, page string) (*canvasv1.ListPixelHistoryResponse, error) {
	return c.client().ListPixelHistory(c.g.ctx(token), &canvasv1.ListPixelHistoryRequest{X: x, Y: y, PageSize: size, PageToken: page})
}

func (c canvasGRPC) pixel(t *testing.T, token string, x, y int32) (*canvasv1.GetPixelResponse, error) {
	return c.client().GetPixel(c.g.ctx(token), &canvasv1.GetPixelRequest{X: x, Y: y})
}

func (c canvasGRPC) ban(t *testing.T, token, userID, reason string) error {
	_, err := c.client().BanUser(c.g.ctx(token), &canvasv1.BanUserRequest{UserId: userID, Reason: reason})
	return err
}

func (c canvasGRPC) unban(t *testing.T, token, userID string) error {
	_, err := c.client().UnbanUser(c.g.ctx(token), &canvasv1.UnbanUserRequest{UserId: userID})
	return err
}

func (c canvasGRPC) clear(t *testing.T, token string, x, y, w, h, color int32) (*canvasv1.ClearRectResponse, error) {
	return c.client().ClearRect(c.g.ctx(token), &canvasv1.ClearRectRequest{X: x, Y: y, Width: w, Height: h, Color: color})
}

type grpcCanvasStream struct {
	s      canvasv1.CanvasService_StreamPixelsClient
	cancel context.CancelFunc
}

func (s grpcCanvasStream) next() (*canvasv1.StreamPixelsResponse, error) { return s.s.Recv() }
func (s grpcCanvasStream) close()                                        { s.cancel() }

func (c canvasGRPC) stream(t *testing.T, since int64) (canvasStream, error) {
	return c.open(t, &canvasv1.StreamPixelsRequest{SinceSeq: since})
}

func (c canvasGRPC) streamAfter(t *testing.T, after int64) (canvasStream, error) {
	return c.open(t, &canvasv1.StreamPixelsRequest{AfterSeq: &after})
}

func (c canvasGRPC) open(t *testing.T, req *canvasv1.StreamPixelsRequest) (canvasStream, error) {
	ctx, cancel := context.WithCancel(c.g.ctx(""))
	t.Cleanup(cancel)
	s, err := c.client().StreamPixels(ctx, req)
	if err != nil {
		cancel()
		return nil, err
	}
	return grpcCanvasStream{s, cancel}, nil
}

// ---- REST ----

type canvasREST struct{ r restAPI }

func (c canvasREST) name() string { return "rest" }

func (c canvasREST) guest(t *testing.T) (string, string) { return c.r.guest(t) }

func canvasDecode[T any, P interface {
	*T
	proto.Message
}](t *testing.T, raw json.RawMessage, err error) (P, error) {
	if err != nil {
		return nil, err
	}
	return decodeProto[T, P](t, raw), nil
}

func (c canvasREST) info(t *testing.T) (*canvasv1.GetCanvasInfoResponse, error) {
	var raw json.RawMessage
	_, err := c.r.call(t, "GET", "/api/v1/canvas/info", "", nil, &raw)
	return canvasDecode[canvasv1.GetCanvasInfoResponse](t, raw, err)
}

func (c canvasREST) place(t *testing.T, token string, x, y, color int32) (*canvasv1.PlacePixelResponse, error) {
	var raw json.RawMessage
	res, err := c.r.call(t, "POST", "/api/v1/canvas/pixels", token, map[string]any{"x": x, "y": y, "color": color}, &raw)
	if res.StatusCode == http.StatusTooManyRequests {
		// The wait is in the header (whole seconds) and in the body.
		secs, perr := strconv.Atoi(res.Header.Get("Retry-After"))
		if perr != nil || secs < 1 {
			t.Errorf("429 with Retry-After %q", res.Header.Get("Retry-After"))
		}
	}
	return canvasDecode[canvasv1.PlacePixelResponse](t, raw, err)
}

func (c canvasREST) snapshot(t *testing.T) (*canvasv1.GetSnapshotResponse, error) {
	var raw json.RawMessage
	_, err := c.r.call(t, "GET", "/api/v1/canvas/snapshot", "", nil, &raw)
	return canvasDecode[canvasv1.GetSnapshotResponse](t, raw, err)
}

func (c canvasREST) get(t *testing.T, path string, headers ...string) (canvasBoard, error) {
	res, body := c.r.do(t, "GET", path, "", nil, headers...)
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusNotModified {
		return canvasBoard{}, restError(t, res, body)
	}
	seq, _ := strconv.ParseInt(res.Header.Get("X-Canvas-Seq"), 10, 64)
	return canvasBoard{
		data: body, contentType: res.Header.Get("Content-Type"), etag: res.Header.Get("ETag"),
		cacheCtl: res.Header.Get("Cache-Control"), seq: seq, notModified: res.StatusCode == http.StatusNotModified,
	}, nil
}

func (c canvasREST) board(t *testing.T, ifNoneMatch string) (canvasBoard, error) {
	var h []string
	if ifNoneMatch != "" {
		h = []string{"If-None-Match", ifNoneMatch}
	}
	return c.get(t, "/api/v1/canvas", h...)
}

func (c canvasREST) png(t *testing.T) (canvasBoard, error) { return c.get(t, "/canvas.png") }

func (c canvasREST) history(t *testing.T, token string, x, y, size int32, page string) (*canvasv1.ListPixelHistoryResponse, error) {
	var raw json.RawMessage
	path := fmt.Sprintf("/api/v1/pixel?x=%d&y=%d&pageSize=%d&pageToken=%s", x, y, size, page)
	_, err := c.r.call(t, "GET", path, token, nil, &raw)
	return canvasDecode[canvasv1.ListPixelHistoryResponse](t, raw, err)
}

func (c canvasREST) pixel(t *testing.T, token string, x, y int32) (*canvasv1.GetPixelResponse, error) {
	var raw json.RawMessage
	_, err := c.r.call(t, "GET", fmt.Sprintf("/api/v1/canvas/pixels/%d/%d", x, y), token, nil, &raw)
	return canvasDecode[canvasv1.GetPixelResponse](t, raw, err)
}

func (c canvasREST) ban(t *testing.T, token, userID, reason string) error {
	_, err := c.r.call(t, "POST", "/api/v1/admin/bans", token, map[string]any{"userId": userID, "reason": reason}, nil)
	return err
}

func (c canvasREST) unban(t *testing.T, token, userID string) error {
	_, err := c.r.call(t, "DELETE", "/api/v1/admin/bans/"+userID, token, nil, nil)
	return err
}

func (c canvasREST) clear(t *testing.T, token string, x, y, w, h, color int32) (*canvasv1.ClearRectResponse, error) {
	var raw json.RawMessage
	_, err := c.r.call(t, "POST", "/api/v1/admin/canvas:clear", token,
		map[string]any{"x": x, "y": y, "width": w, "height": h, "color": color}, &raw)
	return canvasDecode[canvasv1.ClearRectResponse](t, raw, err)
}

// openStream GETs a REST stream asking for accept (plus extra header
// pairs); an error before the first message is answered like a unary
// call's, which restError checks.
func openStream(t *testing.T, url, accept string, headers ...string) (*http.Response, context.CancelFunc, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := (&http.Client{}).Do(req) // no timeout: the stream is long-lived
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("stream error Content-Type %q, want a unary call's", ct)
		}
		return nil, nil, restError(t, res, b)
	}
	if ct := res.Header.Get("Content-Type"); ct != accept {
		t.Errorf("stream Content-Type %q, want %q", ct, accept)
	}
	return res, cancel, nil
}

// restCanvasStream reads newline-delimited JSON.
type restCanvasStream struct {
	t      *testing.T
	body   io.ReadCloser
	lines  *bufio.Scanner
	cancel context.CancelFunc
}

func (s *restCanvasStream) next() (*canvasv1.StreamPixelsResponse, error) {
	if !s.lines.Scan() {
		if err := s.lines.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	var line struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(s.lines.Bytes(), &line); err != nil {
		s.t.Fatalf("stream line %q: %v", s.lines.Bytes(), err)
	}
	if len(line.Error) > 0 {
		var st spb.Status
		if err := protojson.Unmarshal(line.Error, &st); err != nil {
			s.t.Fatalf("stream error %s: %v", line.Error, err)
		}
		return nil, status.ErrorProto(&st)
	}
	var m canvasv1.StreamPixelsResponse
	if err := protojson.Unmarshal(line.Result, &m); err != nil {
		s.t.Fatalf("stream message %s: %v", line.Result, err)
	}
	return &m, nil
}

func (s *restCanvasStream) close() { s.cancel(); _ = s.body.Close() }

func (c canvasREST) stream(t *testing.T, since int64) (canvasStream, error) {
	return c.open(t, fmt.Sprintf("sinceSeq=%d", since))
}

func (c canvasREST) streamAfter(t *testing.T, after int64) (canvasStream, error) {
	return c.open(t, fmt.Sprintf("afterSeq=%d", after))
}

func (c canvasREST) open(t *testing.T, query string) (canvasStream, error) {
	res, cancel, err := openStream(t, c.r.p.base+"/api/v1/canvas/stream?"+query, "application/x-ndjson")
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	return &restCanvasStream{t: t, body: res.Body, lines: sc, cancel: cancel}, nil
}
