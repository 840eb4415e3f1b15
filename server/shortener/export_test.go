package shortener

import "context"

// Resolve exposes the redirect path's read (hot-key cache, shared cache,
// store) to the external benchmarks.
func (s *Service) Resolve(ctx context.Context, code string) error {
	_, err := s.resolve(ctx, code)
	return err
}
