package password

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestHashCheck(t *testing.T) {
	ctx := context.Background()
	h, err := Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if h2, _ := Hash(ctx, "correct horse"); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct hors": false, "": false} {
		if ok, err := Check(ctx, h, pw); err != nil || ok != want {
			t.Errorf("Check(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if _, err := Check(ctx, "$bcrypt$x", "x"); err == nil {
		t.Error("a foreign hash format was accepted")
	}
	if ok, _ := Check(ctx, Dummy, "not a real password"); !ok {
		t.Error("Dummy is not a valid hash")
	}
}

// However many callers arrive at once, no more than Concurrent hashes run;
// callers beyond the waiting room, or who wait too long, get
// RESOURCE_EXHAUSTED with a retry delay rather than a hash.
func TestGateBoundsHashing(t *testing.T) {
	t.Cleanup(func() { SetLimits(DefaultLimits()) })
	SetLimits(Limits{Concurrent: 2, Waiting: 3, Wait: 20 * time.Millisecond})
	g := current.Load()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, busy int
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Hash(context.Background(), "correct horse")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrBusy):
				busy++
				st := status.Convert(err)
				if st.Code() != codes.ResourceExhausted {
					t.Errorf("busy answered %v", st.Code())
				}
				var retry bool
				for _, d := range st.Details() {
					_, is := d.(*errdetails.RetryInfo)
					retry = retry || is
				}
				if !retry {
					t.Errorf("busy carries no RetryInfo: %v", st.Details())
				}
			default:
				t.Errorf("Hash: %v", err)
			}
		}()
	}
	wg.Wait()
	if p := g.peak.Load(); p > 2 || p < 1 {
		t.Fatalf("peak hashes at once = %d, want 1..2", p)
	}
	if ok == 0 || busy == 0 || ok+busy != 40 {
		t.Fatalf("ok=%d busy=%d; want some of each", ok, busy)
	}
}
