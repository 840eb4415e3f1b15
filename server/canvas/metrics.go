package canvas

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Process-wide metrics (the default registry is what /metrics serves).
var (
	streamSubscribers = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "canvas_stream_subscribers", Help: "Open StreamPixels streams.",
	})
	streamResyncs = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "canvas_stream_resyncs_total", Help: "Resync messages sent, by reason.",
	}, []string{"reason"})
	feedRestarts = promauto.NewCounter(prometheus.CounterOpts{
		Name: "canvas_feed_restarts_total", Help: "Times a replica's delta feed restarted (every subscriber resyncs).",
	})
	deliveryLag = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "canvas_delivery_lag_seconds",
		Help:    "Time from a live batch being cut to its send to a subscriber (a placement waits at most one batch interval more to be cut).",
		Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5},
	})
	placements = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "canvas_placements_total", Help: "Placement attempts, by outcome.",
	}, []string{"outcome"})
)
