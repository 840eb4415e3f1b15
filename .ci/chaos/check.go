package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
)

// subscriber follows the canvas stream through the load balancer until ctx
// ends: reconnecting after an error resumes from the last sequence number
// applied, a Resync restarts from a fresh snapshot. Any batch that does not
// continue exactly where the previous one ended is a violation.
func subscriber(ctx context.Context, conn grpc.ClientConnInterface) streamResult {
	c := canvasv1.NewCanvasServiceClient(conn)
	var r streamResult
	var last int64 = -1 // -1: load a snapshot first
	for ctx.Err() == nil {
		if last < 0 {
			snap, err := c.GetSnapshot(ctx, &canvasv1.GetSnapshotRequest{})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			last = snap.GetSeq()
		}
		since := last
		if since == 0 {
			since = -1 // 0 means "from now"; a fresh canvas: take the stream's start
		}
		s, err := c.StreamPixels(ctx, &canvasv1.StreamPixelsRequest{SinceSeq: max(since, 0)})
		if err != nil {
			r.reconnects++
			time.Sleep(100 * time.Millisecond)
			continue
		}
		first := true
		for {
			m, err := s.Recv()
			if err != nil {
				if err != io.EOF {
					r.reconnects++
				}
				break
			}
			if rs := m.GetResync(); rs != nil {
				r.resyncs++
				last = -1
				break
			}
			b := m.GetBatch()
			if b == nil {
				continue
			}
			n := int64(len(b.GetDeltas()) / 4)
			switch {
			case first && since < 0:
				last = b.GetLastSeq()
			case first && b.GetLastSeq() != last && n == 0:
				return fail(r, fmt.Sprintf("resumed after %d, the stream started after %d", last, b.GetLastSeq()))
			case n > 0 && (b.GetFirstSeq() != last+1 || b.GetLastSeq() != b.GetFirstSeq()+n-1):
				return fail(r, fmt.Sprintf("after %d came a batch %d..%d of %d deltas", last, b.GetFirstSeq(), b.GetLastSeq(), n))
			case n == 0 && b.GetLastSeq() != last:
				return fail(r, fmt.Sprintf("after %d came a heartbeat at %d", last, b.GetLastSeq()))
			}
			if n > 0 {
				last = b.GetLastSeq()
				r.batches++
			}
			first = false
		}
	}
	return r
}

func fail(r streamResult, why string) streamResult { r.violation = why; return r }

// checkVotes: every acknowledged vote is counted once, in the exact
// results and once in the audit, and nothing else is counted.
func checkVotes(ctx context.Context, conn grpc.ClientConnInterface, admin string, l *ledger, elections []string, accounts int, bad func(string)) {
	c := votev1.NewVoteServiceClient(conn)
	for e, id := range elections {
		want := map[string]int64{}
		acked := map[string]bool{}
		for u := range accounts {
			if vid, ok := l.votes[votePair{u, e}]; ok {
				want[[]string{"red", "green", "blue"}[(u+e)%3]]++
				acked[vid] = true
			} else {
				bad(fmt.Sprintf("election %d: account %d's vote was never acknowledged", e, u))
			}
		}
		res, err := c.GetResults(ctx, &votev1.GetResultsRequest{ElectionId: id})
		if err != nil {
			bad(fmt.Sprintf("election %d: results: %v", e, err))
			continue
		}
		for _, cc := range res.GetTally().GetCounts() {
			if cc.GetVotes() != want[cc.GetCandidateId()] {
				bad(fmt.Sprintf("election %d: %s has %d votes, %d acknowledged", e, cc.GetCandidateId(), cc.GetVotes(), want[cc.GetCandidateId()]))
			}
		}
		s, err := c.ExportAudit(withToken(ctx, admin), &votev1.ExportAuditRequest{ElectionId: id})
		if err != nil {
			bad(fmt.Sprintf("election %d: audit: %v", e, err))
			continue
		}
		seen := map[string]int{}
		for {
			m, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				bad(fmt.Sprintf("election %d: audit: %v", e, err))
				break
			}
			if m.GetOutcome() == votev1.AuditOutcome_AUDIT_OUTCOME_ACCEPTED {
				seen[m.GetVoteId()]++
			}
		}
		for vid := range acked {
			if seen[vid] != 1 {
				bad(fmt.Sprintf("election %d: acknowledged vote %s has %d accepted audit rows", e, vid, seen[vid]))
			}
		}
		for vid := range seen {
			if !acked[vid] {
				bad(fmt.Sprintf("election %d: audit accepted vote %s nobody was acknowledged", e, vid))
			}
		}
	}
}

// checkCanvas: on every replica's board, each pixel shows its newest
// acknowledged placement (by the server's sequence number), or a later
// placement whose answer was lost.
func checkCanvas(ctx context.Context, conns []grpc.ClientConnInterface, l *ledger, bad func(string)) {
	newest := map[[2]int32]placed{}
	for _, p := range l.placed {
		k := [2]int32{p.x, p.y}
		if q, ok := newest[k]; !ok || p.seq > q.seq {
			newest[k] = p
		}
	}
	for i, conn := range conns {
		snap, err := canvasv1.NewCanvasServiceClient(conn).GetSnapshot(ctx, &canvasv1.GetSnapshotRequest{})
		if err != nil {
			bad(fmt.Sprintf("replica %d: snapshot: %v", i, err))
			continue
		}
		wrong := 0
		for k, p := range newest {
			idx := int(k[1])*int(snap.GetWidth()) + int(k[0])
			got := int32(snap.GetPixels()[idx/2] >> 4)
			if idx%2 == 1 {
				got = int32(snap.GetPixels()[idx/2] & 0x0f)
			}
			if got == p.color || contains(l.unsure[k], got) {
				continue
			}
			if wrong++; wrong <= 3 {
				bad(fmt.Sprintf("replica %d: pixel %v is %d, the newest acknowledged placement (seq %d) is %d", i, k, got, p.seq, p.color))
			}
		}
		if wrong > 3 {
			bad(fmt.Sprintf("replica %d: %d pixels wrong in all", i, wrong))
		}
	}
}

func contains(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// checkFavorites: set/get of each account's favorite is linearizable.
func checkFavorites(l *ledger, dir string, bad func(string)) porcupine.CheckResult {
	res, info := porcupine.CheckOperationsVerbose(favModel, l.favs, time.Minute)
	if res != porcupine.Ok {
		bad(fmt.Sprintf("favorite set/get is not linearizable: %v (history in %s)", res, filepath.Join(dir, "favorites.html")))
		dumpFavorites(l, dir)
		if f, err := os.Create(filepath.Join(dir, "favorites.html")); err == nil {
			_ = porcupine.Visualize(favModel, info, f)
			_ = f.Close()
		}
	}
	return res
}

// dumpFavorites writes the history of each account whose register is not
// linearizable to favorites.txt, in call order, for a person to read.
func dumpFavorites(l *ledger, dir string) {
	f, err := os.Create(filepath.Join(dir, "favorites.txt"))
	if err != nil {
		return
	}
	defer f.Close()
	for _, ops := range favModel.Partition(l.favs) {
		if porcupine.CheckOperationsTimeout(favModel, ops, 10*time.Second) != porcupine.Illegal {
			continue
		}
		sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
		t0 := ops[0].Call
		for _, op := range ops {
			in, out := op.Input.(favInput), op.Output.(favOutput)
			ret := "never"
			if op.Return < 1<<62 {
				ret = fmt.Sprintf("%.3f", float64(op.Return-t0)/1e9)
			}
			fmt.Fprintf(f, "user %d %.3f..%s set=%v in=%q out=%q unknown=%v\n", in.user, float64(op.Call-t0)/1e9, ret, in.set, in.value, out.value, out.unknown)
		}
	}
}
