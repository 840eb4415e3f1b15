package main

import "github.com/apiplatform/platform/server/shortener"

// shortenerFlags registers the shortener service's flags.
func shortenerFlags(fs flags, cfg *shortener.Config) {}
