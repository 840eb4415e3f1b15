package vote

import (
	"context"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
)

// statsSeconds bounds the votes-per-second series (an hour of voting).
const statsSeconds = 3600

// GetStatistics implements VoteService.
func (s *Service) GetStatistics(ctx context.Context, req *votev1.GetStatisticsRequest) (*votev1.GetStatisticsResponse, error) {
	if err := requireElectionID(req.GetElectionId()); err != nil {
		return nil, err
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	st, err := s.store.Statistics(ctx, e.HomeRegion, e.ID, statsSeconds)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	out := &votev1.GetStatisticsResponse{TotalVotes: st.Total}
	for _, sc := range st.PerSecond {
		out.VotesPerSecond = append(out.VotesPerSecond, &votev1.VotesPerSecond{Time: timestamppb.New(sc.Second), Votes: sc.Votes})
	}
	reasons := make([]string, 0, len(st.Rejections))
	for r := range st.Rejections {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		out.Rejections = append(out.Rejections, &votev1.RejectionCount{Reason: r, Count: st.Rejections[r]})
	}
	return out, nil
}

// auditPage is how many records the export reads per store call.
const auditPage = 500

// ExportAudit implements VoteService.
func (s *Service) ExportAudit(req *votev1.ExportAuditRequest, stream grpc.ServerStreamingServer[votev1.ExportAuditResponse]) error {
	ctx := stream.Context()
	if err := requireElectionID(req.GetElectionId()); err != nil {
		return err
	}
	e, err := s.election(ctx, req.GetElectionId())
	if err != nil {
		return err
	}
	var seq int64
	after := ""
	for {
		page, err := s.store.AuditPage(ctx, e.HomeRegion, e.ID, after, auditPage)
		if err != nil {
			return apierr.FromStorage(ctx, err, "")
		}
		for _, r := range page {
			seq++
			outcome := votev1.AuditOutcome_AUDIT_OUTCOME_ACCEPTED
			if r.Outcome == AuditRejected {
				outcome = votev1.AuditOutcome_AUDIT_OUTCOME_REJECTED
			}
			if err := stream.Send(&votev1.ExportAuditResponse{
				Seq: seq, Time: timestamppb.New(r.At), Outcome: outcome, Reason: r.Reason, UserId: r.UserID,
				CandidateId: r.CandidateID, VoteId: r.VoteID, ClientNetwork: r.ClientNetwork,
			}); err != nil {
				return err
			}
			after = r.ID
		}
		if len(page) < auditPage {
			return nil
		}
	}
}
