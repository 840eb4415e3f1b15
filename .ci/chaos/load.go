package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	favoritev1 "github.com/apiplatform/platform/gen/go/favorite/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
)

// ledger is the client-side log of acknowledged operations, and of every
// error with the time it came.
type ledger struct {
	mu      sync.Mutex
	ops     map[string]int
	votes   map[votePair]string // acknowledged vote id
	placed  []placed
	unsure  map[[2]int32][]int32 // colours of placements whose outcome is unknown, by pixel
	favs    []porcupine.Operation
	errs    []opError
	streams []streamResult
}

type votePair struct{ user, election int }

type placed struct {
	seq         int64
	x, y, color int32
}

type opError struct {
	op   string
	at   time.Time
	code int // HTTP status, or the gRPC code's
	err  string
}

type streamResult struct {
	batches, resyncs, reconnects int
	violation                    string
}

func (l *ledger) count(op string) {
	l.mu.Lock()
	l.ops[op]++
	l.mu.Unlock()
}

func (l *ledger) fail(op string, err error) {
	l.mu.Lock()
	l.errs = append(l.errs, opError{op: op, at: time.Now(), code: httpStatus(err), err: err.Error()})
	l.mu.Unlock()
}

// httpStatus is the HTTP status the gateway would answer for err.
func httpStatus(err error) int {
	switch status.Code(err) {
	case codes.Unavailable:
		return 503
	case codes.DeadlineExceeded:
		return 504
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return 500
	case codes.Unimplemented:
		return 501
	case codes.ResourceExhausted:
		return 429
	}
	return 400
}

// retryable: the outcome is unknown or the server said to come back.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.Aborted, codes.ResourceExhausted, codes.Canceled:
		return true
	}
	return false
}

type account struct {
	id, token string
}

func withToken(ctx context.Context, tok string, kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, append(kv, "authorization", "Bearer "+tok)...)
}

// voter casts every account's vote in every election, each retried with
// its Idempotency-Key until acknowledged.
func voter(ctx context.Context, l *ledger, conn grpc.ClientConnInterface, accts []account, elections []string, work <-chan votePair) {
	c := votev1.NewVoteServiceClient(conn)
	for p := range work {
		for attempt := 0; ctx.Err() == nil; attempt++ {
			cctx, cancel := context.WithTimeout(withToken(ctx, accts[p.user].token, "idempotency-key", fmt.Sprintf("chaos-%d-%d", p.user, p.election)), 10*time.Second)
			res, err := c.CastVote(cctx, &votev1.CastVoteRequest{ElectionId: elections[p.election], CandidateId: []string{"red", "green", "blue"}[(p.user+p.election)%3]})
			cancel()
			if err == nil {
				l.mu.Lock()
				l.votes[p] = res.GetVoteId()
				l.ops["vote"]++
				l.mu.Unlock()
				break
			}
			l.fail("vote", err)
			if !retryable(err) {
				break
			}
			time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
		}
	}
}

// placer places random pixels until ctx ends.
func placer(ctx context.Context, l *ledger, conn grpc.ClientConnInterface, a account, w, h int32) {
	c := canvasv1.NewCanvasServiceClient(conn)
	for ctx.Err() == nil {
		x, y, col := rand.Int32N(w), rand.Int32N(h), rand.Int32N(16)
		cctx, cancel := context.WithTimeout(withToken(context.Background(), a.token), 10*time.Second)
		res, err := c.PlacePixel(cctx, &canvasv1.PlacePixelRequest{X: x, Y: y, Color: col})
		cancel()
		l.mu.Lock()
		if err == nil {
			l.placed = append(l.placed, placed{res.GetSeq(), x, y, col})
			l.ops["place"]++
		} else if status.Code(err) != codes.ResourceExhausted && status.Code(err) != codes.InvalidArgument {
			l.unsure[[2]int32{x, y}] = append(l.unsure[[2]int32{x, y}], col)
		}
		l.mu.Unlock()
		if err != nil {
			l.fail("place", err)
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// favInput / favOutput are porcupine's view of favorite set/get on one
// user's register.
type favInput struct {
	user  int
	set   bool
	value string
}

type favOutput struct {
	value   string
	unknown bool // a set whose answer never came: it may or may not have happened
}

// favoriter sets and reads one account's favorite, logging each call's
// invocation and response times for the linearizability check.
func favoriter(ctx context.Context, l *ledger, conn grpc.ClientConnInterface, user int, a account, client int) {
	c := favoritev1.NewFavoriteServiceClient(conn)
	for n := 0; ctx.Err() == nil; n++ {
		in := favInput{user: user, set: rand.IntN(2) == 0}
		var out favOutput
		call := time.Now().UnixNano()
		var err error
		cctx, cancel := context.WithTimeout(withToken(context.Background(), a.token, "idempotency-key", fmt.Sprintf("fav-%d-%d", user, n)), 10*time.Second)
		if in.set {
			// A save whose answer was lost is sent again under its
			// Idempotency-Key until one answer comes: its outcome is then
			// known, which keeps the linearizability check small.
			in.value = fmt.Sprintf("#%02X%02X%02X", user, n/256%256, n%256)
			_, err = c.SetFavorite(cctx, &favoritev1.SetFavoriteRequest{Color: in.value})
			for err != nil && retryable(err) && ctx.Err() == nil {
				l.fail("favorite", err)
				time.Sleep(100 * time.Millisecond)
				cancel()
				cctx, cancel = context.WithTimeout(withToken(context.Background(), a.token, "idempotency-key", fmt.Sprintf("fav-%d-%d", user, n)), 10*time.Second)
				_, err = c.SetFavorite(cctx, &favoritev1.SetFavoriteRequest{Color: in.value})
			}
		} else {
			var res *favoritev1.GetFavoriteResponse
			res, err = c.GetFavorite(cctx, &favoritev1.GetFavoriteRequest{})
			if status.Code(err) == codes.NotFound {
				err = nil
			}
			out.value = res.GetFavorite().GetHex()
		}
		cancel()
		ret := time.Now().UnixNano()
		if err != nil {
			l.fail("favorite", err)
			if !in.set {
				continue // a failed read says nothing
			}
			out.unknown, ret = true, 1<<62 // may take effect any time later
		}
		l.mu.Lock()
		l.favs = append(l.favs, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		l.ops["favorite"]++
		l.mu.Unlock()
		// Paced: the check is exponential in the overlapping operations.
		time.Sleep(time.Duration(20+rand.IntN(30)) * time.Millisecond)
	}
}

// favModel is a register per user (partitioned by user).
var favModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		for _, op := range history {
			u := op.Input.(favInput).user
			by[u] = append(by[u], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, out := input.(favInput), output.(favOutput)
		if in.set {
			return true, in.value
		}
		return out.value == state.(string), state
	},
	Equal: func(a, b any) bool { return a == b },
}

// redirector follows short links and share pages over REST through the
// load balancer; a wrong answer is a violation, a 5xx is logged.
func redirector(ctx context.Context, l *ledger, rest string, links map[string]string, shares []string, bad func(string)) {
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	codes := make([]string, 0, len(links))
	for c := range links {
		codes = append(codes, c)
	}
	for ctx.Err() == nil {
		path, want := "", ""
		if rand.IntN(2) == 0 && len(shares) > 0 {
			path = "/s/" + shares[rand.IntN(len(shares))]
		} else {
			code := codes[rand.IntN(len(codes))]
			path, want = "/"+code, links[code]
		}
		res, err := hc.Get("http://" + rest + path)
		if err != nil {
			l.mu.Lock()
			l.errs = append(l.errs, opError{op: "redirect", at: time.Now(), code: 502, err: err.Error()})
			l.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		_ = res.Body.Close()
		switch {
		case res.StatusCode >= 500:
			l.mu.Lock()
			l.errs = append(l.errs, opError{op: "redirect", at: time.Now(), code: res.StatusCode, err: path})
			l.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		case want != "" && (res.StatusCode/100 != 3 || res.Header.Get("Location") != want):
			bad(fmt.Sprintf("GET %s: %d to %q, want a redirect to %q", path, res.StatusCode, res.Header.Get("Location"), want))
		case want == "" && res.StatusCode != 200:
			bad(fmt.Sprintf("GET %s: %d, want the share page", path, res.StatusCode))
		default:
			l.count("redirect")
		}
	}
}

// putFavorite saves a favorite over REST.
func putFavorite(rest, token, color string) error {
	req, _ := http.NewRequest(http.MethodPut, "http://"+rest+"/api/v1/favorite", strings.NewReader(`{"color":"`+color+`"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("PUT /api/v1/favorite: %d", res.StatusCode)
	}
	return nil
}

// restJSON posts body to path with the token and decodes the answer.
func restJSON(rest, path, token string, body any, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+rest+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		var e bytes.Buffer
		_, _ = e.ReadFrom(res.Body)
		return fmt.Errorf("POST %s: %d %s", path, res.StatusCode, strings.TrimSpace(e.String()))
	}
	return json.NewDecoder(res.Body).Decode(out)
}
