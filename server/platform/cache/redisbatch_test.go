package cache

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Concurrent readers share pipelines: each still gets its own key's reply,
// and a read that starts after another replica's write (here a Set then a
// Delete on a second cache) sees that write, however busy the pipelines are.
func TestRedisPipelinedReadsKeepTheirOwnAnswers(t *testing.T) {
	prefix := uniquePrefix(t)
	reader, writer := NewRedis(testRedis(t), prefix), NewRedis(testRedis(t), prefix)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d", g)
			for round := range 20 {
				want := fmt.Sprintf("%d/%d", g, round)
				if err := writer.Set(ctx, key, []byte(want), time.Minute); err != nil {
					errs <- err
					return
				}
				got, ok, err := reader.Get(ctx, key)
				if err != nil || !ok || string(got) != want {
					errs <- fmt.Errorf("%s after Set(%q): %q, %v, %v", key, want, got, ok, err)
					return
				}
				if err := writer.Delete(ctx, key); err != nil {
					errs <- err
					return
				}
				if got, ok, err := reader.Get(ctx, key); err != nil || ok {
					errs <- fmt.Errorf("%s after Delete: %q, %v, %v", key, got, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	// The reads did share pipelines (else this proves nothing about them).
	if b := reader.(*redisCache).gets; b.batched.Load() == 0 {
		t.Fatal("no read joined another's pipeline")
	}
}
