package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/ratelimit"
)

// The vote surface over both protocols: every vote case runs through the
// generated gRPC client and through plain HTTP against the gateway.

// castOpts are the optional parts of a vote.
type castOpts struct {
	captcha     string // request field
	captchaMeta string // x-captcha-token metadata (gRPC only)
	key         string // Idempotency-Key
	// addr is the client address: X-Forwarded-For from a trusted proxy
	// (REST) or x-client-addr with the gateway secret (gRPC); see
	// addrConfig.
	addr string
}

type voteAPI interface {
	name() string
	createElection(t *testing.T, token string, req *votev1.CreateElectionRequest) (*votev1.Election, error)
	getElection(t *testing.T, token, id string) (*votev1.Election, error)
	openElection(t *testing.T, token, id string) (*votev1.Election, error)
	closeElection(t *testing.T, token, id string) (*votev1.Election, error)
	cast(t *testing.T, token, electionID, candidateID string, o castOpts) (*votev1.CastVoteResponse, error)
	status(t *testing.T, token, userID, electionID string) (*votev1.GetVoteStatusResponse, error)
	results(t *testing.T, token, id string) (*votev1.Tally, error)
	live(t *testing.T, token, id string) (*votev1.Tally, error)
	statistics(t *testing.T, token, id string) (*votev1.GetStatisticsResponse, error)
	audit(t *testing.T, token, id string) ([]*votev1.ExportAuditResponse, error)
	// stream starts StreamResults; tallies arrive on C, which is closed
	// (after err is set) when the stream ends, and elections on E.
	stream(t *testing.T, token, id string, since int64) *tallyStream
	listElections(t *testing.T, token string, req *votev1.ListElectionsRequest) (*votev1.ListElectionsResponse, error)
}

func newTallyStream(cancel context.CancelFunc) *tallyStream {
	return &tallyStream{C: make(chan *votev1.Tally, 100), E: make(chan *votev1.Election, 100), cancel: cancel}
}

type tallyStream struct {
	C          chan *votev1.Tally
	E          chan *votev1.Election // the election, as each message carrying it tells
	err        atomic.Value          // error
	cancel     context.CancelFunc
	heartbeats atomic.Int64
}

// put hands on a message's election and tally (heartbeats only say the
// stream is alive; each is counted); false after a resync, which ends the
// stream.
func (s *tallyStream) put(m *votev1.StreamResultsResponse) bool {
	if m.GetElection() != nil {
		s.E <- m.GetElection()
	}
	switch {
	case m.GetTally() != nil:
		s.C <- m.GetTally()
	case m.GetHeartbeat() != nil:
		s.heartbeats.Add(1)
	case m.GetResync() != nil:
		s.err.Store(resyncError{m.GetResync()})
		return false
	}
	return true
}

// resyncError is a results stream's resync, as the stream's end.
type resyncError struct{ r *votev1.ResultsResync }

func (e resyncError) Error() string { return "resync: " + e.r.GetReason() }

func (s *tallyStream) Err() error {
	if e, ok := s.err.Load().(error); ok {
		return e
	}
	return nil
}

// await reads tallies until one satisfies ok, failing after d; versions
// must never go backwards.
func (s *tallyStream) await(t *testing.T, d time.Duration, ok func(*votev1.Tally) bool) *votev1.Tally {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var last int64 = -1
	for {
		select {
		case tl, open := <-s.C:
			if !open {
				t.Fatalf("stream ended: %v", s.Err())
			}
			if tl.GetVersion() < last {
				t.Fatalf("tally version went back from %d to %d", last, tl.GetVersion())
			}
			last = tl.GetVersion()
			if ok(tl) {
				return tl
			}
		case <-timer.C:
			t.Fatalf("no matching tally within %v (last version %d)", d, last)
		}
	}
}

// quiet fails if a tally arrives within d.
func (s *tallyStream) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case tl, open := <-s.C:
		if open {
			t.Fatalf("unexpected tally %v", tl)
		}
		t.Fatalf("stream ended: %v", s.Err())
	case <-time.After(d):
	}
}

// ---- gRPC ----

type grpcVote struct{ grpcAPI }

func (grpcVote) name() string { return "grpc" }

func (g grpcVote) client() votev1.VoteServiceClient { return votev1.NewVoteServiceClient(g.p.conn) }

func (g grpcVote) createElection(t *testing.T, token string, req *votev1.CreateElectionRequest) (*votev1.Election, error) {
	res, err := g.client().CreateElection(g.ctx(token), req)
	return res.GetElection(), err
}

func (g grpcVote) getElection(t *testing.T, token, id string) (*votev1.Election, error) {
	res, err := g.client().GetElection(g.ctx(token), &votev1.GetElectionRequest{ElectionId: id})
	return res.GetElection(), err
}

func (g grpcVote) openElection(t *testing.T, token, id string) (*votev1.Election, error) {
	res, err := g.client().OpenElection(g.ctx(token), &votev1.OpenElectionRequest{ElectionId: id})
	return res.GetElection(), err
}

func (g grpcVote) closeElection(t *testing.T, token, id string) (*votev1.Election, error) {
	res, err := g.client().CloseElection(g.ctx(token), &votev1.CloseElectionRequest{ElectionId: id})
	return res.GetElection(), err
}

func (g grpcVote) cast(t *testing.T, token, electionID, candidateID string, o castOpts) (*votev1.CastVoteResponse, error) {
	var kv []string
	if o.key != "" {
		kv = append(kv, "idempotency-key", o.key)
	}
	if o.captchaMeta != "" {
		kv = append(kv, "x-captcha-token", o.captchaMeta)
	}
	kv = append(kv, grpcFrom(o.addr)...)
	return g.client().CastVote(g.ctx(token, kv...), &votev1.CastVoteRequest{ElectionId: electionID, CandidateId: candidateID, CaptchaToken: o.captcha})
}

func (g grpcVote) status(t *testing.T, token, userID, electionID string) (*votev1.GetVoteStatusResponse, error) {
	return g.client().GetVoteStatus(g.ctx(token), &votev1.GetVoteStatusRequest{UserId: userID, ElectionId: electionID})
}

func (g grpcVote) results(t *testing.T, token, id string) (*votev1.Tally, error) {
	res, err := g.client().GetResults(g.ctx(token), &votev1.GetResultsRequest{ElectionId: id})
	return res.GetTally(), err
}

func (g grpcVote) live(t *testing.T, token, id string) (*votev1.Tally, error) {
	res, err := g.client().GetLiveResults(g.ctx(token), &votev1.GetLiveResultsRequest{ElectionId: id})
	return res.GetTally(), err
}

func (g grpcVote) statistics(t *testing.T, token, id string) (*votev1.GetStatisticsResponse, error) {
	return g.client().GetStatistics(g.ctx(token), &votev1.GetStatisticsRequest{ElectionId: id})
}

func (g grpcVote) audit(t *testing.T, token, id string) ([]*votev1.ExportAuditResponse, error) {
	ctx, cancel := context.WithTimeout(g.ctx(token), 10*time.Second)
	defer cancel()
	st, err := g.client().ExportAudit(ctx, &votev1.ExportAuditRequest{ElectionId: id})
	if err != nil {
		return nil, err
	}
	var out []*votev1.ExportAuditResponse
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func (g grpcVote) stream(t *testing.T, token, id string, since int64) *tallyStream {
	ctx, cancel := context.WithCancel(g.ctx(token))
	s := newTallyStream(cancel)
	t.Cleanup(cancel)
	st, err := g.client().StreamResults(ctx, &votev1.StreamResultsRequest{ElectionId: id, SinceVersion: since})
	if err != nil {
		s.err.Store(err)
		close(s.C)
		return s
	}
	go func() {
		defer close(s.C)
		for {
			m, err := st.Recv()
			if err != nil {
				s.err.Store(err)
				return
			}
			if !s.put(m) {
				return
			}
		}
	}()
	return s
}

// ---- REST ----

type restVote struct{ restAPI }

func (restVote) name() string { return "rest" }

func protoBody(t *testing.T, m proto.Message) json.RawMessage {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r restVote) election(t *testing.T, method, path, token string, body any, wantStatus int) (*votev1.Election, error) {
	var raw json.RawMessage
	res, err := r.call(t, method, path, token, body, &raw)
	if err == nil && wantStatus != 0 && res.StatusCode != wantStatus {
		t.Fatalf("%s %s answered %d, want %d", method, path, res.StatusCode, wantStatus)
	}
	return decodeProto[votev1.Election](t, raw), err
}

func (r restVote) createElection(t *testing.T, token string, req *votev1.CreateElectionRequest) (*votev1.Election, error) {
	return r.election(t, "POST", "/api/v1/elections", token, protoBody(t, req), http.StatusCreated)
}

func (r restVote) getElection(t *testing.T, token, id string) (*votev1.Election, error) {
	return r.election(t, "GET", "/api/v1/elections/"+url.PathEscape(id), token, nil, http.StatusOK)
}

func (r restVote) openElection(t *testing.T, token, id string) (*votev1.Election, error) {
	return r.election(t, "POST", "/api/v1/elections/"+url.PathEscape(id)+":open", token, map[string]any{}, http.StatusOK)
}

func (r restVote) closeElection(t *testing.T, token, id string) (*votev1.Election, error) {
	return r.election(t, "POST", "/api/v1/elections/"+url.PathEscape(id)+":close", token, map[string]any{}, http.StatusOK)
}

func (r restVote) cast(t *testing.T, token, electionID, candidateID string, o castOpts) (*votev1.CastVoteResponse, error) {
	var h []string
	if o.key != "" {
		h = append(h, "Idempotency-Key", o.key)
	}
	h = append(h, restFrom(o.addr)...)
	body := map[string]any{"electionId": electionID, "candidateId": candidateID}
	if o.captcha != "" {
		body["captchaToken"] = o.captcha
	}
	var raw json.RawMessage
	res, err := r.call(t, "POST", "/api/v1/votes", token, body, &raw, h...)
	if err == nil && res.StatusCode != http.StatusCreated {
		t.Fatalf("vote answered %d, want 201", res.StatusCode)
	}
	if err == nil {
		// The spec's shape, word for word.
		var shape map[string]any
		if json.Unmarshal(raw, &shape) != nil || shape["status"] != "accepted" || shape["voteId"] == "" || shape["acceptedAt"] == nil {
			t.Fatalf("vote answer %s", raw)
		}
	}
	return decodeProto[votev1.CastVoteResponse](t, raw), err
}

func (r restVote) status(t *testing.T, token, userID, electionID string) (*votev1.GetVoteStatusResponse, error) {
	var raw json.RawMessage
	_, err := r.call(t, "GET", "/api/v1/votes/status/"+url.PathEscape(userID)+"?electionId="+url.QueryEscape(electionID), token, nil, &raw)
	return decodeProto[votev1.GetVoteStatusResponse](t, raw), err
}

func (r restVote) tally(t *testing.T, path, token string) (*votev1.Tally, error) {
	var raw json.RawMessage
	_, err := r.call(t, "GET", path, token, nil, &raw)
	return decodeProto[votev1.Tally](t, raw), err
}

func (r restVote) results(t *testing.T, token, id string) (*votev1.Tally, error) {
	return r.tally(t, "/api/v1/results/"+url.PathEscape(id), token)
}

func (r restVote) live(t *testing.T, token, id string) (*votev1.Tally, error) {
	return r.tally(t, "/api/v1/results/live/"+url.PathEscape(id), token)
}

func (r restVote) statistics(t *testing.T, token, id string) (*votev1.GetStatisticsResponse, error) {
	var raw json.RawMessage
	_, err := r.call(t, "GET", "/api/v1/results/statistics/"+url.PathEscape(id), token, nil, &raw)
	return decodeProto[votev1.GetStatisticsResponse](t, raw), err
}

// ndjson reads a grpc-gateway stream: one {"result": ...} or {"error": ...}
// object per line.
type ndjsonLine struct {
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func (r restVote) open(t *testing.T, ctx context.Context, path, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", r.p.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := (&http.Client{}).Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		// An error before the first message is answered like a unary call's.
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("stream error Content-Type %q, want a unary call's", ct)
		}
		return nil, restError(t, res, b)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("stream Content-Type %q", ct)
	}
	return res, nil
}

func lineError(t *testing.T, raw json.RawMessage) error {
	var st struct {
		Code    int32  `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("undecodable stream error %s", raw)
	}
	return status.Error(codes.Code(st.Code), st.Message)
}

func (r restVote) audit(t *testing.T, token, id string) ([]*votev1.ExportAuditResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := r.open(t, ctx, "/api/v1/elections/"+url.PathEscape(id)+"/audit", token)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out []*votev1.ExportAuditResponse
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var l ndjsonLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if l.Error != nil {
			return out, lineError(t, l.Error)
		}
		out = append(out, decodeProto[votev1.ExportAuditResponse](t, l.Result))
	}
	return out, sc.Err()
}

// stream connects in the background: the gateway answers its headers only
// with the first message, which a reconnecting client may not get at once.
func (r restVote) stream(t *testing.T, token, id string, since int64) *tallyStream {
	return r.streamQuery(t, token, id, "sinceVersion="+strconv.FormatInt(since, 10))
}

// streamAfter follows the results after a version (0 included).
func (r restVote) streamAfter(t *testing.T, id string, after int64) *tallyStream {
	return r.streamQuery(t, "", id, "afterVersion="+strconv.FormatInt(after, 10))
}

func (r restVote) streamQuery(t *testing.T, token, id, query string) *tallyStream {
	ctx, cancel := context.WithCancel(context.Background())
	s := newTallyStream(cancel)
	t.Cleanup(cancel)
	go func() {
		defer close(s.C)
		res, err := r.open(t, ctx, "/api/v1/results/stream/"+url.PathEscape(id)+"?"+query, token)
		if err != nil {
			s.err.Store(err)
			return
		}
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			var l ndjsonLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				s.err.Store(fmt.Errorf("stream line %q: %w", sc.Text(), err))
				return
			}
			if l.Error != nil {
				s.err.Store(lineError(t, l.Error))
				return
			}
			var m votev1.StreamResultsResponse
			if err := protojson.Unmarshal(l.Result, &m); err != nil {
				s.err.Store(err)
				return
			}
			if !s.put(&m) {
				return
			}
		}
		s.err.Store(fmt.Errorf("stream ended: %v", sc.Err()))
	}()
	return s
}

// refused waits for a stream to end and returns why.
func (s *tallyStream) refused(t *testing.T) error {
	t.Helper()
	select {
	case tl, open := <-s.C:
		if open {
			t.Fatalf("got tally %v, want the stream refused", tl)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream neither refused nor answered")
	}
	return s.Err()
}

// ---- servers and accounts ----

const (
	adminName     = "vote-admin"
	adminPassword = "admin-password-1"
)

// voteEnv is one server with its admin signed in.
type voteEnv struct {
	p     *platform
	admin string // admin's access token
	g     grpcAPI
	n     atomic.Int64
}

func voteConfig(cfg *app.Config) {
	cfg.AdminUser, cfg.AdminPassword = adminName, adminPassword
	// Every vote server logs its admin in, and with Redis the login limit
	// (per username and per address, all tests are 127.0.0.1) is shared by
	// the whole run: the vote cases would exhaust it between them.
	cfg.Identity.LoginLimit = ratelimit.Limit{Rate: 10_000, Period: time.Minute, Burst: 10_000}
}

func newVoteEnv(t *testing.T, p *platform) *voteEnv {
	t.Helper()
	g := grpcAPI{p}
	res, err := identityv1.NewIdentityServiceClient(p.conn).Login(g.ctx(""), &identityv1.LoginRequest{Username: adminName, Password: adminPassword})
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	return &voteEnv{p: p, admin: res.GetSession().GetAccessToken(), g: g}
}

// startVote starts a server on b with an admin account.
func startVote(t *testing.T, b backend, configure func(*app.Config)) *voteEnv {
	t.Helper()
	return newVoteEnv(t, start(t, b, func(cfg *app.Config) {
		voteConfig(cfg)
		if configure != nil {
			configure(cfg)
		}
	}))
}

// voteClients runs a case on every backend through both protocols, the
// two sharing one server per backend (elections keep cases apart).
func voteClients(t *testing.T, configure func(*app.Config), run func(t *testing.T, env *voteEnv, c voteAPI)) {
	forBackends(t, func(t *testing.T, b backend) {
		env := startVote(t, b, configure)
		for _, c := range []voteAPI{grpcVote{env.g}, restVote{newREST(env.p)}} {
			t.Run(c.name(), func(t *testing.T) { run(t, env, c) })
		}
	})
}

// voter registers a new account and returns its id and token.
func (env *voteEnv) voter(t *testing.T) (string, string) {
	t.Helper()
	name := fmt.Sprintf("voter%d_%d", time.Now().UnixNano()%1e9, env.n.Add(1))
	res, err := identityv1.NewIdentityServiceClient(env.p.conn).Register(env.g.ctx(""), &identityv1.RegisterRequest{Username: name, Password: "password-" + name})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	return res.GetUser().GetId(), res.GetSession().GetAccessToken()
}

// openElection creates and opens an election of the given candidates.
func (env *voteEnv) openElection(t *testing.T, candidates ...string) *votev1.Election {
	t.Helper()
	if len(candidates) == 0 {
		candidates = []string{"red", "green", "blue"}
	}
	req := &votev1.CreateElectionRequest{Title: "Favourite colour"}
	for _, c := range candidates {
		req.Candidates = append(req.Candidates, &votev1.Candidate{CandidateId: c, Name: "The colour " + c})
	}
	gv := grpcVote{env.g}
	e, err := gv.createElection(t, env.admin, req)
	if err != nil {
		t.Fatal(err)
	}
	if e, err = gv.openElection(t, env.admin, e.GetElectionId()); err != nil {
		t.Fatal(err)
	}
	return e
}

// alreadyVoted checks an ALREADY_EXISTS carrying the original vote.
func alreadyVoted(t *testing.T, err error, wantVoteID, wantCandidate string) {
	t.Helper()
	st := wantCode(t, err, codes.AlreadyExists)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == "ALREADY_VOTED" {
			md := info.GetMetadata()
			if md["vote_id"] != wantVoteID || md["candidate_id"] != wantCandidate || md["accepted_at"] == "" {
				t.Fatalf("ALREADY_EXISTS carries %v, want vote %s for %s", md, wantVoteID, wantCandidate)
			}
			return
		}
	}
	t.Fatalf("no ALREADY_VOTED ErrorInfo in %v", st.Details())
}

// wantReason checks a status's ErrorInfo reason.
func wantReason(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st := wantCode(t, err, code)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reason {
			return
		}
	}
	t.Fatalf("no ErrorInfo %s in %v", reason, st.Details())
}

func counts(tl *votev1.Tally) map[string]int64 {
	out := map[string]int64{}
	for _, c := range tl.GetCounts() {
		out[c.GetCandidateId()] = c.GetVotes()
	}
	return out
}

// eventually retries check until it passes or d ends.
func eventually(t *testing.T, d time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// untilCounted repeats calls until they move series on p (a counter such as
// a cache's hits): a replica that has just joined the bus, or rejoined it
// after an outage, answers from memory only once it has caught up. what
// says what did not happen.
func untilCounted(t *testing.T, p *platform, series, what string, calls func()) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		before := scrape(t, p)[series]
		calls()
		if scrape(t, p)[series] <= before {
			return errors.New(what)
		}
		return nil
	})
}

// rejections returns an election's refusals by reason.
func rejections(st *votev1.GetStatisticsResponse) map[string]int64 {
	out := map[string]int64{}
	for _, r := range st.GetRejections() {
		out[r.GetReason()] = r.GetCount()
	}
	return out
}
