package wire

import (
	"testing"

	"google.golang.org/grpc/metadata"
)

// During a rotation servers accept any listed secret; gateways send the
// first of theirs.
func TestSecretRotation(t *testing.T) {
	md := func(secret string) metadata.MD { return metadata.Pairs(SecretKey, secret) }
	for _, c := range []struct {
		sent, accepted string
		want           bool
	}{
		{"old", "old", true},
		{"new", "new, old", true},
		{"old", "new, old", true},
		{"other", "new, old", false},
		{"", "new, old", false},
		{"", "", false},
		{"new,old", "new,old", false}, // the list itself is not a secret
	} {
		if got := FromGateway(md(c.sent), c.accepted); got != c.want {
			t.Errorf("FromGateway(sent %q, accepted %q) = %v, want %v", c.sent, c.accepted, got, c.want)
		}
	}
	if got := FromGateway(metadata.MD{SecretKey: {"a", "a"}}, "a"); got {
		t.Error("two secret values accepted")
	}
	if got := SendSecret(" new , old"); got != "new" {
		t.Errorf("SendSecret = %q, want new", got)
	}
}
