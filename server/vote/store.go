package vote

import (
	"context"
	"time"
)

// State is where an election is in its life (stored as a small integer).
type State int16

// States, as stored.
const (
	StateDraft  State = 1
	StateOpen   State = 2
	StateClosed State = 3
)

// Candidate is one choice of an election.
type Candidate struct {
	ID   string
	Name string
}

// Election as stored.
type Election struct {
	ID         string
	Title      string
	Candidates []Candidate // display order
	State      State
	OpensAt    time.Time // zero: not set yet (set when opened)
	ClosesAt   time.Time // zero: open until closed
	HomeRegion string    // region holding its votes
	CreatedBy  string
	CreatedAt  time.Time
}

// AcceptsAt reports whether the election takes votes at t.
func (e Election) AcceptsAt(t time.Time) bool {
	return e.State == StateOpen && !e.OpensAt.IsZero() && !t.Before(e.OpensAt) &&
		(e.ClosesAt.IsZero() || t.Before(e.ClosesAt))
}

// Over reports whether the election will never take votes again after t:
// closed, or its window ended. A draft or a window not yet begun may still
// open, so only Over is safe to decide from a cached copy.
func (e Election) Over(t time.Time) bool {
	return e.State == StateClosed || (!e.ClosesAt.IsZero() && !t.Before(e.ClosesAt))
}

// HasCandidate reports whether id is one of the election's candidates.
func (e Election) HasCandidate(id string) bool {
	for _, c := range e.Candidates {
		if c.ID == id {
			return true
		}
	}
	return false
}

// ElectionCursor names the last election of a page: the next page starts
// after it.
type ElectionCursor struct {
	CreatedAt time.Time
	ID        string
}

// Vote as stored: one per (election, user).
type Vote struct {
	ID             string
	ElectionID     string
	HomeRegion     string
	UserID         string
	CandidateID    string
	IdempotencyKey string    // "" when cast without one
	CastAt         time.Time // set by the store when inserted
}

// Attempt is a vote to store, with the evidence its audit row keeps.
type Attempt struct {
	Vote Vote // CastAt is ignored: the store sets it
	// AuditID (a UUIDv7) names the audit row the attempt produces, accepted
	// or rejected.
	AuditID       string
	At            time.Time // when the request arrived
	ClientNetwork string    // masked client address
	UserAgent     string
	ServedRegion  string
	CaptchaPassed bool
}

// Audit outcomes, as stored.
const (
	AuditAccepted int16 = 1
	AuditRejected int16 = 2
)

// AuditRecord is one row of an election's append-only audit trail.
type AuditRecord struct {
	ID            string // UUIDv7: the trail is ordered by it
	ElectionID    string
	HomeRegion    string
	At            time.Time
	Outcome       int16
	Reason        string // rejections only
	UserID        string // "" once the user was deleted
	CandidateID   string
	VoteID        string // accepted only
	ClientNetwork string // "" once the user was deleted
	UserAgent     string
	ServedRegion  string
	CaptchaPassed bool
}

// Outcome of one attempt of a batch.
type Outcome int

const (
	// Accepted: the attempt's vote was stored.
	Accepted Outcome = iota + 1
	// Duplicate: the user had already voted; Result.Vote is that vote.
	Duplicate
	// NotOpen: the election did not take votes at commit time.
	NotOpen
	// UnknownCandidate: the candidate is not one of the election's.
	UnknownCandidate
)

// Result of one attempt of a batch.
type Result struct {
	Outcome Outcome
	// Vote is the stored vote: the attempt's own when Accepted, the
	// original when Duplicate.
	Vote Vote
}

// Batch is what one group commit stores in one transaction.
type Batch struct {
	// Attempts, at most one per (election, user) (the service merges
	// concurrent duplicates before they get here; for a repeated pair a
	// store accepts one, which is unspecified, and answers Duplicate for
	// the others).
	Attempts []Attempt
	// Rejections are audit rows of attempts refused before the store
	// (rate limits, CAPTCHA, rules, merged duplicates).
	Rejections []AuditRecord
	// Shard is the counter shard this batch adds its votes to; concurrent
	// batches use different shards so they do not contend on one row.
	Shard int
}

// Counts are votes per candidate id.
type Counts map[string]int64

// SecondCount is the number of votes stored in one second.
type SecondCount struct {
	Second time.Time
	Votes  int64
}

// Stats of one election.
type Stats struct {
	PerSecond  []SecondCount // oldest first
	Rejections map[string]int64
	Total      int64
}

// Store keeps elections, votes, counters and the audit trail. Elections are
// identified by id; the vote, counter and audit methods also take the
// election's home region, which leads their keys (see the votes table).
type Store interface {
	// CreateElection stores a new election with its candidates
	// (storage.ErrConflict if the id exists).
	CreateElection(ctx context.Context, e Election) error
	// GetElection returns an election (storage.ErrNotFound).
	GetElection(ctx context.Context, id string) (Election, error)
	// ListElections returns up to limit elections in one of states, newest
	// (CreatedAt, then ID) first, after the cursor (nil: from the newest).
	ListElections(ctx context.Context, states []State, after *ElectionCursor, limit int) ([]Election, error)
	// UpdateElection reads an election, lets fn change its state and window
	// and stores the result, atomically. fn may run more than once and must
	// have no other effect; an error from it is returned as is and nothing
	// changes.
	UpdateElection(ctx context.Context, id string, fn func(*Election) error) (Election, error)

	// CommitVotes stores a batch in ONE transaction and returns one Result
	// per attempt, in order. A vote is inserted only if the election takes
	// votes at commit time (by the store's clock) and the candidate is one
	// of its own; for every inserted vote the counters and an accepted audit
	// row are written in the same transaction, and for every refused attempt
	// a rejected audit row. When it returns nil the batch is durable.
	CommitVotes(ctx context.Context, b Batch) ([]Result, error)
	// GetVote returns a user's vote (storage.ErrNotFound).
	GetVote(ctx context.Context, homeRegion, electionID, userID string) (Vote, error)

	// LiveCounts sums the counter shards.
	LiveCounts(ctx context.Context, homeRegion, electionID string) (Counts, error)
	// ExactCounts counts the stored votes.
	ExactCounts(ctx context.Context, homeRegion, electionID string) (Counts, error)
	// Statistics returns votes per second (the latest maxSeconds seconds
	// that had votes), rejections by reason and the total.
	Statistics(ctx context.Context, homeRegion, electionID string, maxSeconds int) (Stats, error)
	// AuditPage returns up to limit audit records with ids after afterID
	// ("" for the start), in id order.
	AuditPage(ctx context.Context, homeRegion, electionID, afterID string, limit int) ([]AuditRecord, error)

	// ForgetUser erases a deleted user's personal data: their votes keep
	// counting but no longer name them, and their audit rows lose user id,
	// network and user agent.
	ForgetUser(ctx context.Context, userID string) error
}

// Reasons of rejected attempts, in the audit trail, the statistics and the
// ErrorInfo of the refusal.
const (
	ReasonDuplicate        = "DUPLICATE"
	ReasonNotOpen          = "NOT_OPEN"
	ReasonUnknownCandidate = "UNKNOWN_CANDIDATE"
	ReasonRateLimited      = "RATE_LIMITED"
	ReasonCaptchaFailed    = "CAPTCHA_FAILED"
	ReasonAccountTooNew    = "ACCOUNT_TOO_NEW"
	ReasonTooManyAccounts  = "TOO_MANY_ACCOUNTS_PER_IP"
)

// Replay reports whether r answers a retry of the stored vote: the same
// Idempotency-Key and the same choice. A replay is no new attempt and
// leaves no audit row.
func (r Result) Replay(a Attempt) bool {
	return r.Outcome == Duplicate && a.Vote.IdempotencyKey != "" &&
		r.Vote.IdempotencyKey == a.Vote.IdempotencyKey && r.Vote.CandidateID == a.Vote.CandidateID
}

// AttemptAudit is the audit row an attempt of a batch produces given its
// result (engines write it in the batch's transaction unless r.Replay(a)).
func AttemptAudit(a Attempt, r Result) AuditRecord {
	rec := AuditRecord{
		ID: a.AuditID, ElectionID: a.Vote.ElectionID, HomeRegion: a.Vote.HomeRegion, At: a.At,
		UserID: a.Vote.UserID, CandidateID: a.Vote.CandidateID, ClientNetwork: a.ClientNetwork,
		UserAgent: a.UserAgent, ServedRegion: a.ServedRegion, CaptchaPassed: a.CaptchaPassed,
	}
	switch r.Outcome {
	case Accepted:
		rec.Outcome, rec.VoteID, rec.At = AuditAccepted, r.Vote.ID, r.Vote.CastAt
	case Duplicate:
		rec.Outcome, rec.Reason = AuditRejected, ReasonDuplicate
	case UnknownCandidate:
		rec.Outcome, rec.Reason = AuditRejected, ReasonUnknownCandidate
	default:
		rec.Outcome, rec.Reason = AuditRejected, ReasonNotOpen
	}
	return rec
}
