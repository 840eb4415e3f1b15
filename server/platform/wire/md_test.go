package wire

import (
	"slices"
	"testing"
)

func TestMDKeysDoNotShareRoom(t *testing.T) {
	b := NewMD(3)
	for _, k := range []string{"a", "b", "c", "d"} { // d outgrows the array
		b.Set(k, k+"1")
	}
	md := b.MD()
	md["a"] = append(md["a"], "a2")
	md["c"] = append(md["c"], "c2")
	want := map[string][]string{"a": {"a1", "a2"}, "b": {"b1"}, "c": {"c1", "c2"}, "d": {"d1"}}
	for k, w := range want {
		if got := md[k]; !slices.Equal(got, w) {
			t.Errorf("%s = %q, want %q", k, got, w)
		}
	}
}
