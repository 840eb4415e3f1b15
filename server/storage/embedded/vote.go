package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/vote"
)

// Vote buckets. Keys join ids with a 0 byte; ids never contain one.
var (
	bElections   = []byte("vote_elections")     // election id -> Election
	bVotes       = []byte("vote_votes")         // election \x00 user -> Vote
	bVotesByUser = []byte("vote_votes_by_user") // user \x00 election -> nil
	bVoteCounts  = []byte("vote_counters")      // election \x00 candidate -> uint64
	bVoteAudit   = []byte("vote_audit")         // election \x00 audit id -> AuditRecord
	bAuditByUser = []byte("vote_audit_by_user") // user \x00 election \x00 audit id -> nil
)

func init() {
	allBuckets = append(allBuckets, bElections, bVotes, bVotesByUser, bVoteCounts, bVoteAudit, bAuditByUser)
}

func voteKey(parts ...string) []byte {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(p)
	}
	return b.Bytes()
}

// prefix is voteKey(parts...) followed by the separator: every key under it.
func votePrefix(parts ...string) []byte { return append(voteKey(parts...), 0) }

// CreateElection implements vote.Store.
func (s *Store) CreateElection(ctx context.Context, e vote.Election) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bElections).Get([]byte(e.ID)) != nil {
			return storeerr.ErrConflict
		}
		if e.CreatedAt.IsZero() {
			e.CreatedAt = voteNow()
		}
		return put(tx, bElections, []byte(e.ID), e)
	})
}

// GetElection implements vote.Store.
func (s *Store) GetElection(ctx context.Context, id string) (e vote.Election, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		e, err = get[vote.Election](tx, bElections, []byte(id))
		return err
	})
	return e, err
}

// UpdateElection implements vote.Store (bbolt serialises writers, so the
// read and the write are atomic).
func (s *Store) UpdateElection(ctx context.Context, id string, fn func(*vote.Election) error) (e vote.Election, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		if e, err = get[vote.Election](tx, bElections, []byte(id)); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
		return put(tx, bElections, []byte(id), e)
	})
	return e, err
}

func voteNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// CommitVotes implements vote.Store: the whole batch is one bbolt
// transaction, so one fsync makes every vote of it durable.
func (s *Store) CommitVotes(ctx context.Context, b vote.Batch) (results []vote.Result, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		results = make([]vote.Result, len(b.Attempts))
		now := voteNow()
		elections := map[string]vote.Election{}
		for i, a := range b.Attempts {
			v := a.Vote
			e, ok := elections[v.ElectionID]
			if !ok {
				var err error
				e, err = get[vote.Election](tx, bElections, []byte(v.ElectionID))
				if err != nil && err != storeerr.ErrNotFound {
					return err
				}
				elections[v.ElectionID] = e
			}
			vk := voteKey(v.ElectionID, v.UserID)
			switch orig, err := get[vote.Vote](tx, bVotes, vk); {
			case err == nil:
				results[i] = vote.Result{Outcome: vote.Duplicate, Vote: orig}
			case err != storeerr.ErrNotFound:
				return err
			case e.ID == "" || e.HomeRegion != v.HomeRegion || !e.AcceptsAt(now):
				results[i] = vote.Result{Outcome: vote.NotOpen}
			case !e.HasCandidate(v.CandidateID):
				results[i] = vote.Result{Outcome: vote.UnknownCandidate}
			default:
				v.CastAt = now
				if err := put(tx, bVotes, vk, v); err != nil {
					return err
				}
				if err := tx.Bucket(bVotesByUser).Put(voteKey(v.UserID, v.ElectionID), nil); err != nil {
					return err
				}
				if err := addVoteCount(tx, voteKey(v.ElectionID, v.CandidateID), 1); err != nil {
					return err
				}
				results[i] = vote.Result{Outcome: vote.Accepted, Vote: v}
			}
			if results[i].Replay(a) {
				continue
			}
			if err := putVoteAudit(tx, vote.AttemptAudit(a, results[i])); err != nil {
				return err
			}
		}
		for _, r := range b.Rejections {
			if err := putVoteAudit(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func addVoteCount(tx *bolt.Tx, k []byte, n uint64) error {
	b := tx.Bucket(bVoteCounts)
	var cur uint64
	if raw := b.Get(k); len(raw) == 8 {
		cur = binary.BigEndian.Uint64(raw)
	}
	return b.Put(k, binary.BigEndian.AppendUint64(nil, cur+n))
}

func putVoteAudit(tx *bolt.Tx, r vote.AuditRecord) error {
	if r.UserID != "" {
		if err := tx.Bucket(bAuditByUser).Put(voteKey(r.UserID, r.ElectionID, r.ID), nil); err != nil {
			return err
		}
	}
	return put(tx, bVoteAudit, voteKey(r.ElectionID, r.ID), r)
}

// GetVote implements vote.Store.
func (s *Store) GetVote(ctx context.Context, homeRegion, electionID, userID string) (v vote.Vote, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		v, err = get[vote.Vote](tx, bVotes, voteKey(electionID, userID))
		return err
	})
	return v, err
}

// LiveCounts implements vote.Store.
func (s *Store) LiveCounts(ctx context.Context, homeRegion, electionID string) (vote.Counts, error) {
	out := vote.Counts{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		p := votePrefix(electionID)
		c := tx.Bucket(bVoteCounts).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out[string(k[len(p):])] = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return out, err
}

// eachVote calls fn for every stored vote of an election.
func eachVote(tx *bolt.Tx, electionID string, fn func(v vote.Vote) error) error {
	p := votePrefix(electionID)
	c := tx.Bucket(bVotes).Cursor()
	for k, raw := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, raw = c.Next() {
		v, err := voteDecode[vote.Vote](raw)
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// ExactCounts implements vote.Store.
func (s *Store) ExactCounts(ctx context.Context, homeRegion, electionID string) (vote.Counts, error) {
	out := vote.Counts{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return eachVote(tx, electionID, func(v vote.Vote) error {
			out[v.CandidateID]++
			return nil
		})
	})
	return out, err
}

// Statistics implements vote.Store.
func (s *Store) Statistics(ctx context.Context, homeRegion, electionID string, maxSeconds int) (vote.Stats, error) {
	st := vote.Stats{Rejections: map[string]int64{}}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		perSecond := map[time.Time]int64{}
		if err := eachVote(tx, electionID, func(v vote.Vote) error {
			perSecond[v.CastAt.Truncate(time.Second)]++
			st.Total++
			return nil
		}); err != nil {
			return err
		}
		for sec, n := range perSecond {
			st.PerSecond = append(st.PerSecond, vote.SecondCount{Second: sec, Votes: n})
		}
		slices.SortFunc(st.PerSecond, func(a, b vote.SecondCount) int { return a.Second.Compare(b.Second) })
		if len(st.PerSecond) > maxSeconds {
			st.PerSecond = st.PerSecond[len(st.PerSecond)-maxSeconds:]
		}
		p := votePrefix(electionID)
		c := tx.Bucket(bVoteAudit).Cursor()
		for k, raw := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, raw = c.Next() {
			r, err := voteDecode[vote.AuditRecord](raw)
			if err != nil {
				return err
			}
			if r.Outcome == vote.AuditRejected {
				st.Rejections[r.Reason]++
			}
		}
		return nil
	})
	return st, err
}

// AuditPage implements vote.Store. Audit ids are UUIDv7 in canonical form,
// whose text order is their time order.
func (s *Store) AuditPage(ctx context.Context, homeRegion, electionID, afterID string, limit int) (out []vote.AuditRecord, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		p := votePrefix(electionID)
		c := tx.Bucket(bVoteAudit).Cursor()
		k, raw := c.Seek(append(slices.Clone(p), afterID...))
		if afterID != "" && k != nil && bytes.Equal(k, voteKey(electionID, afterID)) {
			k, raw = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, p) && len(out) < limit; k, raw = c.Next() {
			r, err := voteDecode[vote.AuditRecord](raw)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// ForgetUser implements vote.Store: each vote moves to a random user id
// (and keeps counting); audit rows lose what identifies the person.
func (s *Store) ForgetUser(ctx context.Context, userID string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		up := votePrefix(userID)
		byUser := tx.Bucket(bVotesByUser)
		var elections []string
		c := byUser.Cursor()
		for k, _ := c.Seek(up); k != nil && bytes.HasPrefix(k, up); k, _ = c.Next() {
			elections = append(elections, string(k[len(up):]))
		}
		for _, e := range elections {
			v, err := get[vote.Vote](tx, bVotes, voteKey(e, userID))
			if err != nil && err != storeerr.ErrNotFound {
				return err
			}
			if err == nil {
				if err := tx.Bucket(bVotes).Delete(voteKey(e, userID)); err != nil {
					return err
				}
				v.UserID, v.IdempotencyKey = uuid.NewString(), ""
				if err := put(tx, bVotes, voteKey(e, v.UserID), v); err != nil {
					return err
				}
			}
			if err := byUser.Delete(voteKey(userID, e)); err != nil {
				return err
			}
		}
		var audits [][]byte
		ab := tx.Bucket(bAuditByUser)
		c = ab.Cursor()
		for k, _ := c.Seek(up); k != nil && bytes.HasPrefix(k, up); k, _ = c.Next() {
			audits = append(audits, slices.Clone(k))
		}
		for _, k := range audits {
			rest := bytes.SplitN(k[len(up):], []byte{0}, 2)
			if len(rest) == 2 {
				ak := voteKey(string(rest[0]), string(rest[1]))
				r, err := get[vote.AuditRecord](tx, bVoteAudit, ak)
				if err != nil && err != storeerr.ErrNotFound {
					return err
				}
				if err == nil {
					r.UserID, r.ClientNetwork, r.UserAgent = "", "", ""
					if err := put(tx, bVoteAudit, ak, r); err != nil {
						return err
					}
				}
			}
			if err := ab.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

func voteDecode[T any](raw []byte) (T, error) {
	var v T
	return v, json.Unmarshal(raw, &v)
}
