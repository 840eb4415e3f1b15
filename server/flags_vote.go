package main

import "github.com/apiplatform/platform/server/vote"

// voteFlags registers the vote service's flags.
func voteFlags(fs flags, cfg *vote.Config) {}
