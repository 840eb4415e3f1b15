package epoch

import (
	"context"
	"runtime"
	"sync"
	"testing"
)

type counting struct {
	mu      sync.Mutex
	v       uint64
	reads   int
	release chan struct{}
}

// Current reads the value, then answers once released: a read in flight
// holds a value from before anything that happens meanwhile.
func (c *counting) Current(context.Context) (uint64, error) {
	c.mu.Lock()
	v := c.v
	c.reads++
	c.mu.Unlock()
	<-c.release
	return v, nil
}

func (c *counting) Next(context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.v++
	return c.v, nil
}

// Concurrent calls share reads, but none gets a value read before it
// arrived: a bump before a call is always seen by it.
func TestCoalesce(t *testing.T) {
	src := &counting{release: make(chan struct{})}
	c := Coalesce(src).(*coalesced)
	first := make(chan uint64)
	go func() { v, _ := c.Current(context.Background()); first <- v }()
	// Wait until that read is in flight, then bump: later calls must see 1.
	for {
		src.mu.Lock()
		read := src.reads == 1
		src.mu.Unlock()
		if read {
			break
		}
		runtime.Gosched()
	}
	_, _ = src.Next(context.Background())
	var wg sync.WaitGroup
	got := make([]uint64, 20)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], _ = c.Current(context.Background()) }()
	}
	// Let the 20 join the waiting read before the first answers.
	for {
		c.mu.Lock()
		joined := c.waiting != nil
		c.mu.Unlock()
		if joined {
			break
		}
		runtime.Gosched()
	}
	close(src.release)
	if v := <-first; v != 0 {
		t.Fatalf("first call got %d, want the value read before the bump", v)
	}
	wg.Wait()
	for i, v := range got {
		if v != 1 {
			t.Fatalf("call %d got epoch %d, want 1 (bumped before it arrived)", i, v)
		}
	}
	if src.reads > 1+len(got) || src.reads < 2 {
		t.Fatalf("%d reads", src.reads)
	}
}

func TestMemory(t *testing.T) {
	m := NewMemory()
	ctx := context.Background()
	if v, _ := m.Current(ctx); v != 0 {
		t.Fatalf("fresh counter at %d", v)
	}
	if n, _ := m.Next(ctx); n != 1 {
		t.Fatalf("Next = %d", n)
	}
	if v, _ := m.Current(ctx); v != 1 {
		t.Fatalf("Current after Next = %d", v)
	}
}
