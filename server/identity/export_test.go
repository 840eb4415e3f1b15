package identity

import "time"

// SetClock lets the package tests move time past token lifetimes.
func (s *Service) SetClock(now func() time.Time) { s.now = now }
