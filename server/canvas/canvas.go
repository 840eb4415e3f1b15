// Package canvas implements canvas.v1.CanvasService.
package canvas

import (
	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
	"github.com/apiplatform/platform/server/platform/auth"
)

// Policies of this service's methods.
var Policies = auth.Policies{}

// Config of the service.
type Config struct{}

// Service implements CanvasService. Not built yet: every method answers
// UNIMPLEMENTED.
type Service struct {
	canvasv1.UnimplementedCanvasServiceServer
}

// New builds the service.
func New(cfg Config) *Service { return &Service{} }
