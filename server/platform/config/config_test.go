package config_test

import (
	"testing"
	"time"

	"github.com/apiplatform/platform/server/platform/config"
)

type sample struct {
	N     int
	D     time.Duration
	S     string
	Hosts []string
	L     struct{ Rate, Burst int }
}

func TestFillZeroKeepsSetFieldsAndFillsZeroOnes(t *testing.T) {
	def := sample{N: 5, D: time.Second, S: "x", Hosts: []string{"a"}, L: struct{ Rate, Burst int }{1, 2}}
	got := sample{N: 7, S: ""}
	got.L.Burst = 9
	config.FillZero(&got, def)
	if got.N != 7 || got.D != time.Second || got.S != "x" || len(got.Hosts) != 1 {
		t.Fatalf("got %+v", got)
	}
	if got.L.Rate != 0 || got.L.Burst != 9 {
		t.Fatalf("a partly set struct field must be kept as given, got %+v", got.L)
	}
	var zero sample
	config.FillZero(&zero, def)
	if zero.N != 5 || zero.L.Burst != 2 {
		t.Fatalf("zero config must become the default, got %+v", zero)
	}
}
