package wire

import (
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc/metadata"
)

// FromGateway reports whether md carries one of the comma-separated gateway
// secrets, i.e. what else the gateway put in it may be believed. During a
// rotation servers accept the old and the new one while gateways move over
// (gateways send the first of theirs, see SendSecret).
func FromGateway(md metadata.MD, secrets string) bool {
	return fromGateway(md.Get(SecretKey), secrets)
}

func fromGateway(got []string, secrets string) bool {
	if len(got) != 1 {
		return false
	}
	ok := false
	for rest := secrets; rest != ""; {
		var s string
		s, rest, _ = strings.Cut(rest, ",")
		if s = strings.TrimSpace(s); s != "" && subtle.ConstantTimeCompare([]byte(got[0]), []byte(s)) == 1 {
			ok = true
		}
	}
	return ok
}

// SendSecret is the secret a gateway sends: the first of a comma-separated
// list.
func SendSecret(secrets string) string {
	first, _, _ := strings.Cut(secrets, ",")
	return strings.TrimSpace(first)
}
