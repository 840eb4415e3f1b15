package main

import (
	"github.com/apiplatform/platform/server/share"
)

// shareFlags registers the share service's flags.
func shareFlags(fs flags, cfg *share.Config) {
	fs.Var(listValue{&cfg.LinkKeys}, "share-link-keys", "comma-separated secrets (at least 32 bytes each) signing share links: the first signs, all verify, so a new key goes first and the old one stays until its links expired (30 days); empty: a key ring created once in the database, shared by every replica (env SHARE_LINK_KEYS)")
	fs.fromEnv("share-link-keys", "SHARE_LINK_KEYS")
	if f := fs.Lookup("share-link-keys"); f.DefValue != "" {
		f.DefValue = "(set from SHARE_LINK_KEYS)" // -h must not print secrets
	}
}
