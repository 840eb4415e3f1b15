// Package shortener implements shortener.v1.ShortenerService.
package shortener

import (
	shortenerv1 "github.com/apiplatform/platform/gen/go/shortener/v1"
	"github.com/apiplatform/platform/server/platform/auth"
)

// Policies of this service's methods.
var Policies = auth.Policies{}

// Config of the service.
type Config struct{}

// Service implements ShortenerService. Not built yet: every method answers
// UNIMPLEMENTED.
type Service struct {
	shortenerv1.UnimplementedShortenerServiceServer
}

// New builds the service.
func New(cfg Config) *Service { return &Service{} }
