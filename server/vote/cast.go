package vote

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/favorite"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/clientaddr"
	"github.com/apiplatform/platform/server/platform/ratelimit"
	"github.com/apiplatform/platform/server/platform/wire"
)

// Keys of the ErrorInfo metadata of ALREADY_EXISTS: the original vote.
const (
	MetaVoteID      = "vote_id"
	MetaCandidateID = "candidate_id"
	MetaAcceptedAt  = "accepted_at" // RFC 3339
)

const maxCaptchaToken = 4096

// CastVote implements VoteService. In order: the request, the election
// (cached), the window, rate limits, rule checks, the CAPTCHA, then the
// group commit; each refusal past the election lookup is recorded in the
// audit trail with its reason.
func (s *Service) CastVote(ctx context.Context, req *votev1.CastVoteRequest) (*votev1.CastVoteResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	key, err := favorite.IdempotencyKey(ctx)
	if err != nil {
		return nil, err
	}
	token := req.GetCaptchaToken()
	if token == "" {
		token = wire.FromContext(ctx).CaptchaToken
	}
	var v apierr.Validator
	v.Check(canonicalUUID(req.GetElectionId()), "election_id", "must be an election id (a lower-case UUID)")
	v.Check(candidateIDRE.MatchString(req.GetCandidateId()), "candidate_id", "must be 1 to 64 letters, digits, '-' or '_'")
	v.Check(len(token) <= maxCaptchaToken, "captcha_token", "is too long")
	if err := v.Err(); err != nil {
		return nil, err
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	if !e.HasCandidate(req.GetCandidateId()) {
		return nil, apierr.InvalidArgument("candidate_id", "is not a candidate of this election")
	}
	now := s.now()
	addr := wire.FromContext(ctx).Addr
	auditID, err := uuid.NewV7()
	if err != nil {
		return nil, apierr.Internal(ctx, err)
	}
	att := Attempt{
		Vote: Vote{
			ID: uuid.NewString(), ElectionID: e.ID, HomeRegion: e.HomeRegion, UserID: p.UserID,
			CandidateID: req.GetCandidateId(), IdempotencyKey: key,
		},
		AuditID: auditID.String(), At: now, ClientNetwork: maskedNetwork(addr), UserAgent: userAgent(ctx),
		ServedRegion: s.region,
	}

	// Only a final state is trusted from the cache; a draft or a window not
	// begun yet is left to the store, which checks again at insert.
	if e.Over(now) {
		s.reject(att, ReasonNotOpen)
		return nil, apierr.FailedPrecondition("the election is closed", "ELECTION_CLOSED")
	}
	if e.State == StateOpen && now.Before(e.OpensAt) {
		s.reject(att, ReasonNotOpen)
		return nil, apierr.FailedPrecondition("voting has not started yet", "ELECTION_NOT_OPEN")
	}
	if err := s.limit(ctx, "vote:user:"+p.UserID, s.cfg.UserLimit); err != nil {
		s.reject(att, ReasonRateLimited)
		return nil, err
	}
	if err := s.limit(ctx, "vote:addr:"+e.ID+":"+clientaddr.Key(addr), s.cfg.AddrLimit); err != nil {
		s.reject(att, ReasonRateLimited)
		return nil, err
	}
	if reason, err := s.checkRules(ctx, e, p.UserID, addr, now); err != nil {
		if reason != "" {
			s.reject(att, reason)
		}
		return nil, err
	}
	if s.captcha != nil {
		if resp, err := s.checkCaptcha(ctx, &att, token, addr); resp != nil || err != nil {
			return resp, err
		}
	}
	f, merged, err := s.submit(ctx, att)
	if err != nil {
		return nil, err
	}
	return s.answer(ctx, att, f, merged)
}

// userAgent is the voter's User-Agent (the browser's through the gateway,
// else the gRPC client's), bounded for the audit row.
func userAgent(ctx context.Context) string {
	ua := wire.FromContext(ctx).UserAgent
	if len(ua) > 256 {
		ua = strings.ToValidUTF8(ua[:256], "")
	}
	return ua
}

// reject records a refused attempt: a Prometheus count by reason, and an
// audit row written with the next batch.
func (s *Service) reject(att Attempt, reason string) {
	rejectionsTotal.WithLabelValues(reason).Inc()
	rec := AttemptAudit(att, Result{})
	rec.Reason = reason
	if s.commits != nil {
		s.commits.reject(rec)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	if _, err := s.store.CommitVotes(ctx, Batch{Rejections: []AuditRecord{rec}}); err != nil {
		s.log.Warn("vote: audit of a refusal failed", "err", err)
	}
}

func (s *Service) limit(ctx context.Context, key string, l ratelimit.Limit) error {
	return ratelimit.Check(ctx, s.limiter, key, l, "too many votes; retry later", ReasonRateLimited)
}

func refusal(c codes.Code, msg, reason string) error {
	st, _ := status.New(c, msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: apierr.Domain})
	return st.Err()
}

// checkRules runs the rule-based bot checks. A refusal returns its reason;
// an error without a reason is a failure to check.
func (s *Service) checkRules(ctx context.Context, e Election, userID string, addr netip.Addr, now time.Time) (string, error) {
	if s.cfg.MinAccountAge > 0 {
		created, err := s.created.get(ctx, userID)
		if err != nil {
			return "", apierr.FromStorage(ctx, err, "account not found")
		}
		if now.Sub(created) < s.cfg.MinAccountAge {
			return ReasonAccountTooNew, refusal(codes.PermissionDenied, "this account is too new to vote", ReasonAccountTooNew)
		}
	}
	if s.cfg.MaxAccountsPerAddr > 0 {
		k, prev := accountsKeys(e.ID, clientaddr.Key(addr), now, s.cfg.AccountsWindow)
		added, n, err := s.accounts.add(ctx, k, prev, userID, 2*s.cfg.AccountsWindow)
		if err != nil {
			// Like the rate limits: a Redis outage is not worth refusing
			// every vote; the other checks still apply.
			s.log.Warn("vote: accounts-per-address check failed; admitting", "err", err)
			return "", nil
		}
		if added && n > int64(s.cfg.MaxAccountsPerAddr) {
			// Forget it again, so that a retry is refused too rather than
			// found in the set.
			_ = s.accounts.remove(ctx, k, userID)
			return ReasonTooManyAccounts, refusal(codes.PermissionDenied, "too many accounts voted from this address", ReasonTooManyAccounts)
		}
	}
	return "", nil
}

// checkCaptcha verifies the token. A refused token may come from a client
// retrying an accepted vote (tokens are single use): then the original
// answer stands, not a CAPTCHA failure.
func (s *Service) checkCaptcha(ctx context.Context, att *Attempt, token string, addr netip.Addr) (*votev1.CastVoteResponse, error) {
	if token == "" {
		s.reject(*att, ReasonCaptchaFailed)
		return nil, apierr.InvalidArgument("captcha_token", "is required")
	}
	ok, err := s.captcha.Verify(ctx, token, addr)
	if err != nil {
		s.log.Warn("vote: captcha verifier failed", "err", err)
		return nil, apierr.Unavailable("the CAPTCHA could not be checked; retry later", 2*time.Second)
	}
	if ok {
		att.CaptchaPassed = true
		return nil, nil
	}
	if orig, err := s.store.GetVote(ctx, att.Vote.HomeRegion, att.Vote.ElectionID, att.Vote.UserID); err == nil {
		return s.answer(ctx, *att, &flight{att: *att, res: Result{Outcome: Duplicate, Vote: orig}}, true)
	}
	s.reject(*att, ReasonCaptchaFailed)
	return nil, refusal(codes.PermissionDenied, "the CAPTCHA was not solved", ReasonCaptchaFailed)
}

// submit gets an attempt stored. Concurrent attempts of the same user in
// the same election join the first one's flight (merged) rather than reach
// the store: their answer follows from its result. It returns once the
// flight's batch committed (or failed), or ctx ended; in the latter case
// the vote may still be stored, and a retry with the same Idempotency-Key
// finds it.
func (s *Service) submit(ctx context.Context, att Attempt) (*flight, bool, error) {
	for try := 0; ; try++ {
		f, merged, err := s.fly(ctx, att)
		if err != nil {
			return nil, false, err
		}
		if f.err == nil {
			return f, merged, nil
		}
		// The flight we joined ended with its leader's context: ours is
		// fine, so go again (as leader, or joining a newer flight).
		if merged && try < 3 && isContextErr(f.err) {
			continue
		}
		switch {
		case errors.Is(f.err, errOverloaded):
			return nil, false, apierr.Unavailable("too many votes in flight; retry shortly", time.Second)
		case isContextErr(f.err):
			return nil, false, status.FromContextError(f.err).Err()
		}
		return nil, false, apierr.FromStorage(ctx, f.err, "")
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fly leads a new flight for att, or joins the one in progress, and waits
// for it (or for ctx).
func (s *Service) fly(ctx context.Context, att Attempt) (f *flight, merged bool, err error) {
	k := att.Vote.ElectionID + "/" + att.Vote.UserID
	s.mu.Lock()
	if f = s.inflight[k]; f != nil {
		s.mu.Unlock()
		merged = true
	} else {
		f = &flight{att: att, done: make(chan struct{})}
		s.inflight[k] = f
		s.mu.Unlock()
		if s.commits != nil {
			if err := s.commits.enqueue(ctx, f, s.cfg.QueueWait); err != nil {
				f.err = err
				s.finish([]*flight{f})
			}
		} else {
			commitBatch(s.store, s.log, []*flight{f}, nil, randShard(s.cfg.CounterShards))
			s.committed([]*flight{f})
		}
	}
	select {
	case <-f.done:
		return f, merged, nil
	case <-ctx.Done():
		return nil, false, status.FromContextError(ctx.Err()).Err()
	}
}

// committed is told each batch after its transaction: it wakes the callers
// and marks the elections whose tally moved.
func (s *Service) committed(flights []*flight) {
	for _, f := range flights {
		if f.err == nil && f.res.Outcome == Accepted {
			acceptedTotal.Inc()
			s.tallies.markDirty(f.att.Vote.ElectionID)
		}
	}
	s.finish(flights)
}

func (s *Service) finish(flights []*flight) {
	s.mu.Lock()
	for _, f := range flights {
		k := f.att.Vote.ElectionID + "/" + f.att.Vote.UserID
		if s.inflight[k] == f {
			delete(s.inflight, k)
		}
	}
	s.mu.Unlock()
	for _, f := range flights {
		close(f.done)
	}
}

// answer turns a flight's result into this attempt's answer. merged says
// the attempt did not reach the store itself (its refusals are audited
// here; the store audited the others).
func (s *Service) answer(ctx context.Context, att Attempt, f *flight, merged bool) (*votev1.CastVoteResponse, error) {
	res := f.res
	switch res.Outcome {
	case Accepted, Duplicate:
		orig := res.Vote
		if orig.ID == att.Vote.ID {
			return accepted(ctx, orig), nil
		}
		if (Result{Outcome: Duplicate, Vote: orig}).Replay(att) {
			return accepted(ctx, orig), nil // a retry: the original acceptance
		}
		if merged {
			s.reject(att, ReasonDuplicate)
		} else {
			rejectionsTotal.WithLabelValues(ReasonDuplicate).Inc()
		}
		if att.Vote.IdempotencyKey != "" && att.Vote.IdempotencyKey == orig.IdempotencyKey {
			return nil, apierr.InvalidArgument("Idempotency-Key", "was already used with a different request body")
		}
		return nil, alreadyVoted(orig)
	case UnknownCandidate:
		if merged {
			s.reject(att, ReasonUnknownCandidate)
		} else {
			rejectionsTotal.WithLabelValues(ReasonUnknownCandidate).Inc()
		}
		return nil, apierr.InvalidArgument("candidate_id", "is not a candidate of this election")
	default:
		if merged {
			s.reject(att, ReasonNotOpen)
		} else {
			rejectionsTotal.WithLabelValues(ReasonNotOpen).Inc()
		}
		// Refused by the store: the cached copy is stale; reload it so the
		// next attempts are refused before the store.
		s.elections.Remove(att.Vote.ElectionID)
		e, err := s.election(ctx, att.Vote.ElectionID)
		if err == nil && e.Over(s.now()) {
			return nil, apierr.FailedPrecondition("the election is closed", "ELECTION_CLOSED")
		}
		return nil, apierr.FailedPrecondition("the election is not open for voting", "ELECTION_NOT_OPEN")
	}
}

func accepted(ctx context.Context, v Vote) *votev1.CastVoteResponse {
	wire.SetStatus(ctx, http.StatusCreated)
	return &votev1.CastVoteResponse{VoteId: v.ID, Status: "accepted", AcceptedAt: timestamppb.New(v.CastAt)}
}

// alreadyVoted is ALREADY_EXISTS carrying the original vote in its
// ErrorInfo.
func alreadyVoted(orig Vote) error {
	st, _ := status.New(codes.AlreadyExists, "already voted in this election").WithDetails(&errdetails.ErrorInfo{
		Reason: "ALREADY_VOTED", Domain: apierr.Domain,
		Metadata: map[string]string{
			MetaVoteID: orig.ID, MetaCandidateID: orig.CandidateID, MetaAcceptedAt: orig.CastAt.Format(time.RFC3339Nano),
		},
	})
	return st.Err()
}

// randShard is the counter shard of a vote committed on its own.
func randShard(shards int) int { return rand.IntN(max(shards, 1)) }
