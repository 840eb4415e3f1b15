package epoch

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/apiplatform/platform/server/platform/redistest"
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
	c := Coalesce(src).(member).g
	first := make(chan uint64)
	go func() { v, _ := c.current(context.Background()); first <- v[0] }()
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
		go func() { defer wg.Done(); v, _ := c.current(context.Background()); got[i] = v[0] }()
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

// Counters of a group answer from one MGET, which within a call is shared
// by all of them; a new call reads again. On every Redis topology: the
// hash-tagged second key shares the first one's Cluster slot.
func TestRedisGroup(t *testing.T) {
	c := redistest.Client(t)
	prefix := redistest.Prefix("epoch")
	first := prefix + "revocation"
	cs := NewRedisGroup(c, first, "{"+first+"}:favorite")
	t.Cleanup(func() { redistest.DeleteMatching(t, c, "*"+prefix+"*") })
	ctx := context.Background()
	for i, want := range []uint64{0, 0} {
		if v, err := cs[i].Current(ctx); err != nil || v != want {
			t.Fatalf("fresh counter %d: %d, %v", i, v, err)
		}
	}
	a, err := cs[0].Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs[1].Next(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := cs[1].Next(ctx)
	if err != nil {
		t.Fatal(err)
	}

	call := WithCall(ctx)
	if v, err := cs[0].Current(call); err != nil || v != a {
		t.Fatalf("revocation epoch %d, %v; want %d", v, err, a)
	}
	// Bumped after the call's read: the call keeps the value it read
	// (consistent within the call), the next call sees the bump.
	later, err := cs[1].Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := cs[1].Current(call); err != nil || v != b {
		t.Fatalf("favorite epoch within the call %d, %v; want %d (from the call's one read)", v, err, b)
	}
	if v, err := cs[1].Current(WithCall(ctx)); err != nil || v != later {
		t.Fatalf("favorite epoch in a new call %d, %v; want %d", v, err, later)
	}
}

// Within a call, a group is read once whatever its counters ask.
func TestGroupReadOncePerCall(t *testing.T) {
	var mu sync.Mutex
	reads := 0
	g := &group{read: func(context.Context) ([]uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		reads++
		return []uint64{uint64(reads), uint64(10 * reads)}, nil
	}}
	m0, m1 := member{g: g}, member{g: g, i: 1}
	call := WithCall(context.Background())
	v0, _ := m0.Current(call)
	v1, _ := m1.Current(call)
	if v0 != 1 || v1 != 10 || reads != 1 {
		t.Fatalf("one call: %d, %d after %d reads; want 1, 10 after one", v0, v1, reads)
	}
	if v, _ := m1.Current(context.Background()); v != 20 || reads != 2 {
		t.Fatalf("outside a call: %d after %d reads; want a fresh read", v, reads)
	}
}

type flaky struct {
	counting
	failures int
}

func (f *flaky) Next(ctx context.Context) (uint64, error) {
	if f.failures > 0 {
		f.failures--
		return 0, errors.New("dial tcp: connection refused")
	}
	return f.counting.Next(ctx)
}

// A bump after a committed write outlasts a short failure; a long one is
// reported.
func TestBumpRetries(t *testing.T) {
	ctx := context.Background()
	if n, err := Bump(ctx, &flaky{failures: 2}); err != nil || n != 1 {
		t.Fatalf("after two failures: %d, %v; want 1", n, err)
	}
	if _, err := Bump(ctx, &flaky{failures: len(bumpRetries) + 1}); err == nil {
		t.Fatal("a counter failing every attempt was reported bumped")
	}
}
