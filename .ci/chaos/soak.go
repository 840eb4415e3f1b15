package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// usage is one replica's footprint at one moment, read from its /metrics.
type usage struct {
	rss, heap, goroutines float64
}

// The three gauges are unlabelled lines of the text format; reading them
// needs no exposition parser.
var usageGauges = map[string]func(*usage, float64){
	"process_resident_memory_bytes": func(u *usage, v float64) { u.rss = v },
	"go_memstats_heap_inuse_bytes":  func(u *usage, v float64) { u.heap = v },
	"go_goroutines":                 func(u *usage, v float64) { u.goroutines = v },
}

func scrapeUsage(ctx context.Context, addr string) (usage, error) {
	var u usage
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return u, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(res.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if set := usageGauges[name]; ok && set != nil {
			if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
				set(&u, v)
			}
		}
	}
	return u, sc.Err()
}

func sampleAll(ctx context.Context, reps []*replica) ([]usage, error) {
	out := make([]usage, len(reps))
	for i, r := range reps {
		u, err := scrapeUsage(ctx, r.metricsAddr())
		if err != nil {
			return nil, fmt.Errorf("replica %d metrics: %w", i, err)
		}
		out[i] = u
	}
	return out, nil
}

// within reports whether every replica's RSS and goroutines are at most
// 10% above its baseline (a small absolute slack keeps a handful of
// goroutines from failing an otherwise flat line).
func within(now, base []usage) bool {
	for i := range now {
		if now[i].rss > base[i].rss*1.10 || now[i].goroutines > base[i].goroutines*1.10+5 {
			return false
		}
	}
	return true
}

func printUsage(label string, us []usage) {
	fmt.Printf("%-16s", label)
	for i, u := range us {
		fmt.Printf("  r%d rss %6.1f MB heap %6.1f MB goroutines %5.0f", i, u.rss/1e6, u.heap/1e6, u.goroutines)
	}
	fmt.Println()
}

// soak samples every replica each interval while the load runs for d,
// stops the load, then samples until every replica is back within 10% of
// its baseline, or settle has passed. The baseline is the first sample
// under load: a replica whose caches, pools and connections have warmed
// up. What it holds past that, once the load is gone, is what leaked.
func soak(ctx context.Context, reps []*replica, idle []usage, d, interval, settle time.Duration, stopLoad func()) error {
	printUsage("before the load", idle)
	began := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var base []usage
	for time.Since(began) < d {
		<-tick.C
		us, err := sampleAll(ctx, reps)
		if err != nil {
			return err
		}
		if base == nil {
			base = us
		}
		printUsage("load "+time.Since(began).Round(time.Second).String(), us)
	}
	stopLoad()
	stopped := time.Now()
	for {
		<-tick.C
		us, err := sampleAll(ctx, reps)
		if err != nil {
			return err
		}
		printUsage("idle "+time.Since(stopped).Round(time.Second).String(), us)
		if within(us, base) {
			fmt.Printf("soak: back within 10%% of baseline %v after the load stopped\n", time.Since(stopped).Round(time.Second))
			return nil
		}
		if time.Since(stopped) > settle {
			return fmt.Errorf("soak: RSS or goroutines still more than 10%% above baseline %v after the load stopped", settle)
		}
	}
}
