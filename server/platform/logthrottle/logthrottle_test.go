package logthrottle

import (
	"testing"
	"time"
)

func TestOnePerIntervalWithCount(t *testing.T) {
	th := Throttle{Every: time.Hour}
	if n, ok := th.Allow(); !ok || n != 0 {
		t.Fatalf("first event: %d, %v; want logged", n, ok)
	}
	for range 5 {
		if _, ok := th.Allow(); ok {
			t.Fatal("an event within the interval was let through")
		}
	}
	th.last = th.last.Add(-time.Hour) // the interval has passed
	if n, ok := th.Allow(); !ok || n != 5 {
		t.Fatalf("after the interval: %d, %v; want logged with 5 held back", n, ok)
	}
}

func TestZeroIntervalAdmitsAll(t *testing.T) {
	var th Throttle
	for range 3 {
		if n, ok := th.Allow(); !ok || n != 0 {
			t.Fatalf("%d, %v", n, ok)
		}
	}
}
