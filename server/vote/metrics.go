package vote

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Process-wide metrics (promauto at init: several services in one process,
// as in tests, share them).
var (
	acceptedTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "vote_accepted_total",
		Help: "Votes stored and acknowledged.",
	})
	rejectionsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "vote_rejections_total",
		Help: "Vote attempts refused, by reason (RATE_LIMITED, CAPTCHA_FAILED, ACCOUNT_TOO_NEW, TOO_MANY_ACCOUNTS_PER_IP, DUPLICATE, NOT_OPEN, ...).",
	}, []string{"reason"})
	batchSize = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "vote_batch_size",
		Help:    "Vote attempts per group-commit transaction.",
		Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000},
	})
	commitSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "vote_commit_seconds",
		Help:    "Duration of one group-commit transaction.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .15, .25, .5, 1, 2.5},
	})
	queueDepth = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "vote_queue_depth",
		Help: "Vote attempts waiting for a group commit.",
	})
	auditDropped = promauto.NewCounter(prometheus.CounterOpts{
		Name: "vote_audit_dropped_total",
		Help: "Audit rows of refused attempts dropped because the audit queue was full (a flood of refusals).",
	})
	streamSubscribers = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "vote_stream_subscribers",
		Help: "Open StreamResults streams.",
	})
	tallyPublishes = promauto.NewCounter(prometheus.CounterOpts{
		Name: "vote_tally_publishes_total",
		Help: "Live tallies published on the bus.",
	})
)
