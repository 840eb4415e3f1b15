// Package logthrottle bounds how often one repeating failure is logged.
//
// When Redis or the database goes away, every request fails the same way;
// logging each one would bury everything else (and cost more than the
// request). A Throttle lets one line through per interval and counts what it
// held back, so the next line can say how many were not logged.
// golang.org/x/time/rate.Sometimes keeps the interval but not the count.
package logthrottle

import (
	"sync"
	"time"
)

// Throttle admits one event per Every. The zero Every admits every event.
type Throttle struct {
	Every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether this event may be logged and, when it may, how many
// events were held back since the last one that was.
func (t *Throttle) Allow() (suppressed int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if !t.last.IsZero() && now.Sub(t.last) < t.Every {
		t.suppressed++
		return 0, false
	}
	n := t.suppressed
	t.suppressed = 0
	t.last = now
	return n, true
}
