// Package vote implements vote.v1.VoteService.
package vote

import (
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
	"github.com/apiplatform/platform/server/platform/auth"
)

// Policies of this service's methods.
var Policies = auth.Policies{}

// Config of the service.
type Config struct{}

// Service implements VoteService. Not built yet: every method answers
// UNIMPLEMENTED.
type Service struct {
	votev1.UnimplementedVoteServiceServer
}

// New builds the service.
func New(cfg Config) *Service { return &Service{} }
