package shortener

import (
	"context"
	"errors"
	"math/bits"
	"sync"
	"testing"
)

func testCodec(t testing.TB, key string) *codec {
	t.Helper()
	c, err := newCodec([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Every id of a large consecutive range gets its own 7-character base62
// code, and decoding gives the id back: the mapping is one to one.
func TestCodesUniqueOverLargeRange(t *testing.T) {
	c := testCodec(t, "0123456789abcdef0123456789abcdef")
	n := uint64(200_000)
	if testing.Short() {
		n = 30_000
	}
	seen := make(map[string]uint64, n)
	// The start of the space and a stretch near its end.
	for _, start := range []uint64{0, codeSpace - n} {
		for id := start; id < start+n; id++ {
			code, err := c.encode(id)
			if err != nil {
				t.Fatal(err)
			}
			if len(code) != codeLen || !codeRE.MatchString(code) {
				t.Fatalf("id %d: code %q is not 7 base62 characters", id, code)
			}
			if prev, dup := seen[code]; dup {
				t.Fatalf("ids %d and %d share code %q", prev, id, code)
			}
			seen[code] = id
			back, err := c.decode(code)
			if err != nil || back != id {
				t.Fatalf("decode(%q) = %d, %v; want %d", code, back, err, id)
			}
		}
	}
	if _, err := c.encode(codeSpace); !errors.Is(err, errCodeSpaceExhausted) {
		t.Fatalf("encode past the space: %v", err)
	}
}

// Points spread over the whole space stay in it and come back: cycle
// walking never leaves [0, 62^7) and the inverse undoes the permutation.
func TestPermutationStaysInSpace(t *testing.T) {
	c := testCodec(t, "another key, another permutation")
	for i := uint64(0); i < 50_000; i++ {
		id := (i * 70_368_744_177_664) % codeSpace // spread over the space
		v := c.permute(id)
		if v >= codeSpace {
			t.Fatalf("permute(%d) = %d, outside the space", id, v)
		}
		if c.unpermute(v) != id {
			t.Fatalf("unpermute(permute(%d)) = %d", id, c.unpermute(v))
		}
	}
}

// Consecutive ids give codes that look unrelated: neighbouring codes share
// few characters, their numeric order is a coin toss, and their values are
// far apart; the same ids under another key give other codes.
func TestCodesDoNotLookSequential(t *testing.T) {
	c := testCodec(t, "0123456789abcdef0123456789abcdef")
	other := testCodec(t, "fedcba9876543210fedcba9876543210")
	const n = 20_000
	var samePos, increasing, near, sameUnderOtherKey int
	var bitDiff int
	prevCode, _ := c.encode(0)
	prevVal := c.permute(0)
	for id := uint64(1); id <= n; id++ {
		code, _ := c.encode(id)
		v := c.permute(id)
		for i := range codeLen {
			if code[i] == prevCode[i] {
				samePos++
			}
		}
		if v > prevVal {
			increasing++
		}
		if d := int64(v) - int64(prevVal); d > -1_000_000 && d < 1_000_000 {
			near++
		}
		bitDiff += bits.OnesCount64(v ^ prevVal)
		if oc, _ := other.encode(id); oc == code {
			sameUnderOtherKey++
		}
		prevCode, prevVal = code, v
	}
	// Random 7-character strings share a position with probability 1/62.
	if avg := float64(samePos) / n; avg > 0.3 {
		t.Errorf("neighbouring codes share %.2f characters on average; random ones share about %.2f", avg, 7.0/62)
	}
	if frac := float64(increasing) / n; frac < 0.45 || frac > 0.55 {
		t.Errorf("%.1f%% of neighbours increase; random order gives about 50%%", 100*frac)
	}
	if near > n/1000 {
		t.Errorf("%d of %d neighbours are within 10^6 of each other", near, n)
	}
	if avg := float64(bitDiff) / n; avg < 18 {
		t.Errorf("neighbours differ in %.1f bits on average; want about 21 of 42", avg)
	}
	if sameUnderOtherKey > 2 {
		t.Errorf("%d codes are the same under another key", sameUnderOtherKey)
	}
}

func TestCodecRejectsShortKey(t *testing.T) {
	if _, err := newCodec([]byte("short")); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
	c := testCodec(t, "0123456789abcdef")
	for _, bad := range []string{"", "abc", "abcdefgh", "abc-def", "abc_def"} {
		if _, err := c.decode(bad); err == nil {
			t.Errorf("decode(%q) succeeded", bad)
		}
	}
}

// The allocator spends reserved blocks locally and never hands out an id
// twice, however many goroutines ask at once.
func TestIDAllocator(t *testing.T) {
	var mu sync.Mutex
	var next uint64 = 5
	reservations := 0
	a := &idAllocator{block: 10, reserve: func(_ context.Context, n int) (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		reservations++
		first := next
		next += uint64(n)
		return first, nil
	}}
	var wg sync.WaitGroup
	got := make([][]uint64, 8)
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				ids, err := a.take(context.Background(), 3)
				if err != nil {
					t.Error(err)
					return
				}
				got[g] = append(got[g], ids...)
			}
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, ids := range got {
		for _, id := range ids {
			if seen[id] || id < 5 {
				t.Fatalf("id %d handed out twice or never reserved", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 240 {
		t.Fatalf("%d ids, want 240", len(seen))
	}
	if reservations > 240/10+8 {
		t.Fatalf("%d reservations for 240 ids in blocks of 10", reservations)
	}
	// A request larger than a block reserves what it needs at once.
	before := reservations
	ids, err := a.take(context.Background(), 100)
	if err != nil || len(ids) != 100 {
		t.Fatalf("take(100) = %d ids, %v", len(ids), err)
	}
	if reservations-before > 2 {
		t.Fatalf("take(100) made %d reservations", reservations-before)
	}
	// A failing store fails the take; nothing is handed out.
	bad := &idAllocator{block: 10, reserve: func(context.Context, int) (uint64, error) { return 0, errors.New("down") }}
	if ids, err := bad.take(context.Background(), 1); err == nil || ids != nil {
		t.Fatalf("take with the store down = %v, %v", ids, err)
	}
}

func BenchmarkEncode(b *testing.B) {
	c := testCodec(b, "0123456789abcdef0123456789abcdef")
	for i := 0; b.Loop(); i++ {
		_, _ = c.encode(uint64(i))
	}
}
