package main

import "github.com/apiplatform/platform/server/canvas"

// canvasFlags registers the canvas service's flags; finish fills cfg after
// Parse.
func canvasFlags(fs flags, cfg *canvas.Config) (finish func()) {
	def := canvas.DefaultConfig()
	fs.integer(&cfg.Width, "canvas-width", "CANVAS_WIDTH", def.Width, "canvas width in pixels (fixed once the canvas exists)")
	fs.integer(&cfg.Height, "canvas-height", "CANVAS_HEIGHT", def.Height, "canvas height in pixels (fixed once the canvas exists)")
	fs.duration(&cfg.Cooldown, "canvas-cooldown", "CANVAS_COOLDOWN", def.Cooldown, "time a user waits between two placements (0: none)")
	fs.duration(&cfg.BatchInterval, "canvas-batch-interval", "CANVAS_BATCH_INTERVAL", def.BatchInterval, "interval between pixel stream batches (100ms to 10s)")
	fs.integer(&cfg.RetainDeltas, "canvas-retain-deltas", "CANVAS_RETAIN_DELTAS", def.RetainDeltas, "recent placements kept for streams resuming with since_seq (4 bytes each, per replica and in Redis)")
	fs.duration(&cfg.MaxLag, "canvas-max-lag", "CANVAS_MAX_LAG", def.MaxLag, "a stream subscriber this far behind is dropped with a resync")
	fs.integer(&cfg.MaxClearArea, "canvas-max-clear-area", "CANVAS_MAX_CLEAR_AREA", def.MaxClearArea, "most pixels one admin clear may paint")
	fs.duration(&cfg.SnapshotMaxAge, "canvas-snapshot-max-age", "CANVAS_SNAPSHOT_MAX_AGE", def.SnapshotMaxAge, "serve a cached board this old without checking for changes (0: always check)")
	return func() {
		if cfg.Cooldown == 0 { // the flag's "0: none"; a zero Config field means the default
			cfg.Cooldown = canvas.NoCooldown
		}
	}
}
