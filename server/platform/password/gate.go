package password

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/status"

	"github.com/apiplatform/platform/server/platform/apierr"
)

// Every hash costs argonMemory (19 MiB) and most of a core for tens of
// milliseconds, and anyone can ask for one (registration, login, a link
// password). Unbounded, 60 parallel sign-ups took a server to 2 GB and 12 s
// calls. So hashing is process-wide admission controlled: at most one hash
// per core runs at once (memory is then bounded by cores × 19 MiB), a
// bounded number of callers wait briefly for a slot, and the rest are
// refused at once with RESOURCE_EXHAUSTED and a retry delay.

// ErrBusy is returned (wrapped in a RESOURCE_EXHAUSTED status with
// RetryInfo, so handlers can return it as is) when no hashing slot freed up
// in time.
var ErrBusy = errors.New("password: hashing at capacity")

// Limits of the process-wide hashing gate.
type Limits struct {
	// Concurrent hashes at once (default GOMAXPROCS).
	Concurrent int
	// Waiting callers beyond which new ones are refused at once (default
	// 16 per slot).
	Waiting int
	// Wait is how long a caller waits for a slot (default 2s).
	Wait time.Duration
}

// DefaultLimits is sized to the machine.
func DefaultLimits() Limits {
	n := runtime.GOMAXPROCS(0)
	return Limits{Concurrent: n, Waiting: 16 * n, Wait: 2 * time.Second}
}

type gate struct {
	lim     Limits
	sem     *semaphore.Weighted
	waiting atomic.Int64
	running atomic.Int64
	peak    atomic.Int64
}

var current atomic.Pointer[gate]

func init() { SetLimits(DefaultLimits()) }

// SetLimits replaces the gate (for flags at start; hashes already admitted
// finish under the old one).
func SetLimits(l Limits) {
	d := DefaultLimits()
	if l.Concurrent <= 0 {
		l.Concurrent = d.Concurrent
	}
	if l.Waiting <= 0 {
		l.Waiting = 16 * l.Concurrent
	}
	if l.Wait <= 0 {
		l.Wait = d.Wait
	}
	current.Store(&gate{lim: l, sem: semaphore.NewWeighted(int64(l.Concurrent))})
	slotsGauge.Set(float64(l.Concurrent))
}

var (
	slotsGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "password_hash_slots", Help: "Password hashes allowed to run at once.",
	})
	inflightGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "password_hash_inflight", Help: "Password hashes running now.",
	})
	peakGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "password_hash_inflight_peak", Help: "Most password hashes ever running at once in this process.",
	})
	waitingGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "password_hash_waiting", Help: "Callers waiting for a password hashing slot.",
	})
	refusedTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "password_hash_refused_total", Help: "Password hashes refused because every slot stayed busy.",
	})
)

// do runs f in a slot.
func (g *gate) do(ctx context.Context, f func()) error {
	if g.waiting.Add(1) > int64(g.lim.Waiting) {
		g.waiting.Add(-1)
		return g.busy()
	}
	waitingGauge.Inc()
	wctx, cancel := context.WithTimeout(ctx, g.lim.Wait)
	err := g.sem.Acquire(wctx, 1)
	cancel()
	g.waiting.Add(-1)
	waitingGauge.Dec()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return g.busy()
	}
	defer g.sem.Release(1)
	n := g.running.Add(1)
	defer g.running.Add(-1)
	inflightGauge.Inc()
	defer inflightGauge.Dec()
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	peakGauge.Set(float64(g.peak.Load()))
	f()
	return nil
}

func (g *gate) busy() error {
	refusedTotal.Inc()
	return busyError{apierr.ResourceExhausted("the server is busy checking passwords; retry shortly", "PASSWORD_HASHING_BUSY", g.lim.Wait)}
}

// busyError is ErrBusy as a gRPC status.
type busyError struct{ st error }

func (e busyError) Error() string              { return e.st.Error() }
func (e busyError) Is(target error) bool       { return target == ErrBusy }
func (e busyError) GRPCStatus() *status.Status { return status.Convert(e.st) }

// Hash returns the PHC-encoded argon2id hash of password with a new salt,
// waiting for a hashing slot (ErrBusy when none frees up in time).
func Hash(ctx context.Context, password string) (string, error) {
	var out string
	var err error
	if gerr := current.Load().do(ctx, func() { out, err = hash(password) }); gerr != nil {
		return "", gerr
	}
	return out, err
}

// Check verifies password against a PHC-encoded argon2id hash, waiting for
// a hashing slot (ErrBusy when none frees up in time).
func Check(ctx context.Context, encoded, password string) (bool, error) {
	var ok bool
	var err error
	if gerr := current.Load().do(ctx, func() { ok, err = check(encoded, password) }); gerr != nil {
		return false, gerr
	}
	return ok, err
}

// Status turns an error of Hash or Check into what a handler returns:
// ErrBusy as is (RESOURCE_EXHAUSTED with a retry delay), the caller's own
// cancellation or deadline as such, anything else as INTERNAL.
func Status(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, ErrBusy):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return apierr.Internal(ctx, err)
}
