package vote

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
)

// Election changes on the results stream. An open or close is published on
// the bus (topic per election) by the replica that made it, and every
// replica's feed hands it to its streams beside the tallies, so every open
// page shows the new state at once. Best effort like the tallies: a page
// that reconnects gets the current state in its first message.

func electionTopic(electionID string) string { return "vote.election." + electionID }

func decodeElection(msg []byte) (*votev1.StreamResultsResponse, error) {
	e := &votev1.Election{}
	return &votev1.StreamResultsResponse{Election: e}, proto.Unmarshal(msg, e)
}

// announce publishes an election's new state to every replica's streams.
// The transition is stored already; a failure here only delays pages until
// they reconnect, so it is logged, not returned.
func (s *Service) announce(e Election) {
	msg, err := proto.Marshal(electionProto(e))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.bus.Publish(ctx, electionTopic(e.ID), msg)
	}
	if err != nil {
		s.log.Warn("vote: announce election state", "election", e.ID, "err", err)
	}
}
