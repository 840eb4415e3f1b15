package main

import "github.com/apiplatform/platform/server/canvas"

// canvasFlags registers the canvas service's flags.
func canvasFlags(fs flags, cfg *canvas.Config) {}
