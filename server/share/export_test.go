package share

import "time"

// SetClock lets the package tests move time past expiries.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// NewSlug exposes slug generation to the entropy test.
func NewSlug() (string, error) { return newSlug() }
