package share

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKeyRingRotation(t *testing.T) {
	oldKey, newKey := []byte(strings.Repeat("o", 32)), []byte(strings.Repeat("n", 32))
	before, err := newKeyRing([][]byte{oldKey})
	if err != nil {
		t.Fatal(err)
	}
	c := linkClaims{ID: "abc", Owner: "u", Hex: "#112233", ExpiresMs: 1}
	tok := before.sign(c)
	during, _ := newKeyRing([][]byte{newKey, oldKey})
	after, _ := newKeyRing([][]byte{newKey})
	if got, err := during.verify(tok); err != nil || got.ID != "abc" || got.Hex != "#112233" {
		t.Fatalf("old token during rotation: %+v, %v", got, err)
	}
	if _, err := after.verify(tok); !errors.Is(err, errBadSignature) {
		t.Fatalf("old token after rotation: %v", err)
	}
	if _, err := before.verify(during.sign(c)); !errors.Is(err, errBadSignature) {
		t.Fatal("the new first key does not sign")
	}
	// Any change to the payload breaks the signature.
	payload, sig, _ := strings.Cut(tok, ".")
	tampered := b64.EncodeToString([]byte(strings.Replace(mustDecode(t, payload), "#112233", "#FFFFFF", 1))) + "." + sig
	if _, err := during.verify(tampered); !errors.Is(err, errBadSignature) {
		t.Fatalf("tampered token: %v", err)
	}
	for _, bad := range []string{"", "abc", payload, tok + "x", strings.Repeat("A", 600) + "." + sig} {
		if _, err := during.verify(bad); !errors.Is(err, errMalformedToken) {
			t.Fatalf("verify(%.20q) = %v, want malformed", bad, err)
		}
	}
	if _, err := newKeyRing([][]byte{[]byte("short")}); err == nil {
		t.Fatal("short key accepted")
	}
}

func mustDecode(t *testing.T, s string) string {
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The revoked list is trusted only when loaded and current to the epoch;
// out-of-order messages wait; a lost bus or a lag makes it stale.
func TestRevokedLinks(t *testing.T) {
	r := newRevokedLinks()
	exp := time.Now().Add(time.Hour)
	if _, sure := r.check("a", 0); sure {
		t.Fatal("trusted before the first load")
	}
	// A message arriving while loading is kept.
	r.apply(linkRevocation{Epoch: 6, IDs: map[string]int64{"b": exp.UnixMilli()}})
	if !r.stale(5) {
		t.Fatal("not stale before the first load")
	}
	r.loaded(5, map[string]time.Time{"a": exp})
	if revoked, _ := r.check("a", 6); !revoked {
		t.Fatal("loaded id not revoked")
	}
	if revoked, sure := r.check("c", 6); revoked || !sure {
		t.Fatalf("check(c, 6) = %v, %v; want trusted not revoked", revoked, sure)
	}
	// 8 before 7: not current to 8 until 7 arrives.
	r.apply(linkRevocation{Epoch: 8, IDs: map[string]int64{"d": exp.UnixMilli()}})
	if _, sure := r.check("c", 8); sure {
		t.Fatal("trusted with epoch 7 missing")
	}
	r.apply(linkRevocation{Epoch: 7, IDs: map[string]int64{"e": exp.UnixMilli()}})
	if _, sure := r.check("c", 8); !sure {
		t.Fatal("not trusted once 7 arrived")
	}
	// Behind for a whole period: stale.
	if r.stale(9) || !r.stale(9) {
		t.Fatal("a lag over two checks is not stale")
	}
	r.loaded(9, nil)
	r.unsure()
	if _, sure := r.check("c", 9); sure || !r.stale(9) {
		t.Fatal("trusted after the bus was lost")
	}
	if revoked, _ := r.check("d", 0); !revoked {
		t.Fatal("a revoked id was forgotten when the bus was lost")
	}
	r.prune(exp)
	if revoked, _ := r.check("d", 0); revoked {
		t.Fatal("an expired id was kept")
	}
	// Revocations applied while the epoch cannot be read (nothing calls
	// prune) still forget expired ids.
	r.apply(linkRevocation{IDs: map[string]int64{"gone": time.Now().Add(-time.Second).UnixMilli()}})
	r.pruned = time.Now().Add(-pruneEvery)
	r.apply(linkRevocation{IDs: map[string]int64{"f": exp.UnixMilli()}})
	if revoked, _ := r.check("gone", 0); revoked {
		t.Fatal("an id expired before the next revocation was kept")
	}
	if revoked, _ := r.check("f", 0); !revoked {
		t.Fatal("the new revocation was pruned")
	}
}
