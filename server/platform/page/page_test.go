package page

import (
	"regexp"
	"testing"
	"time"
)

func TestSizeAndToken(t *testing.T) {
	for n, want := range map[int32]int{0: 50, 1: 1, 100: 100} {
		if got, err := Size(n); err != nil || got != want {
			t.Errorf("Size(%d) = %d, %v; want %d", n, got, err, want)
		}
	}
	for _, n := range []int32{-1, 101} {
		if _, err := Size(n); err == nil {
			t.Errorf("Size(%d) accepted", n)
		}
	}
	key := regexp.MustCompile(`^[a-z]+$`).MatchString
	at := time.Date(2026, 11, 24, 1, 2, 3, 4000, time.UTC)
	gotAt, gotKey, ok, err := Parse(Token(at, "abc"), key)
	if err != nil || !ok || !gotAt.Equal(at) || gotKey != "abc" {
		t.Fatalf("round trip: %v %q %v %v", gotAt, gotKey, ok, err)
	}
	if _, _, ok, err := Parse("", key); ok || err != nil {
		t.Fatalf("empty token: %v %v", ok, err)
	}
	for _, bad := range []string{"!!", Token(at, "ABC"), "MTIz"} {
		if _, _, _, err := Parse(bad, key); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestTrim(t *testing.T) {
	at := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	pos := func(k string) (time.Time, string) { return at, k }
	if rows, next := Trim([]string{"a", "b"}, 2, pos); len(rows) != 2 || next != "" {
		t.Fatalf("last page: %q, next %q", rows, next)
	}
	rows, next := Trim([]string{"a", "b", "c"}, 2, pos)
	if len(rows) != 2 || next != Token(at, "b") {
		t.Fatalf("full page: %q, next %q; want a token after b", rows, next)
	}
}
