package auth_test

import (
	"testing"

	"github.com/apiplatform/platform/server/platform/auth"
)

// A session may call anything; an API key what its scopes name: read
// scopes the service's Get, List, Stream, Follow and Export methods, write
// scopes every method of the service, `*` every service.
func TestPrincipalAllows(t *testing.T) {
	const (
		get   = "/favorite.v1.FavoriteService/GetFavorite"
		set   = "/favorite.v1.FavoriteService/SetFavorite"
		cast  = "/vote.v1.VoteService/CastVote"
		watch = "/vote.v1.VoteService/StreamResults"
	)
	for _, c := range []struct {
		scopes string
		method string
		want   bool
	}{
		{"favorite:read", get, true},
		{"favorite:read", set, false},
		{"favorite:write", set, true},
		{"favorite:write", get, true},
		{"favorite:write", cast, false},
		{"vote:read", watch, true},
		{"vote:read", cast, false},
		{"*:read", watch, true},
		{"*:read", set, false},
		{"*:write", cast, true},
		{"favorite:read vote:write", cast, true},
		{"", get, false},
		{"favorite", get, false},
	} {
		p := auth.Principal{UserID: "u", KeyID: "k", Scopes: c.scopes}
		if got := p.Allows(c.method); got != c.want {
			t.Errorf("scopes %q, %s: allowed %v, want %v", c.scopes, c.method, got, c.want)
		}
	}
	if !(auth.Principal{UserID: "u"}).Allows(cast) {
		t.Error("a session was refused")
	}
}
