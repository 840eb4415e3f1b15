package main

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want string // "" for accepted
	}{
		{"-- a comment\nCREATE TABLE IF NOT EXISTS t (id UUID NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY)\n", ""},
		{"CREATE TABLE a (x INT);", ""},
		{"ALTER TABLE t SET LOCALITY REGIONAL BY ROW", ""},
		{"CREATE TABLE a (x INT); CREATE TABLE b (x INT)", "2 statements"},
		{"-- only a comment\n", "0 statements"},
		{"", "0 statements"},
		{"CREATE TABEL a (x INT)", "syntax error"},
	} {
		err := check(c.sql)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("check(%q) = %v, want accepted", c.sql, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("check(%q) = %v, want an error mentioning %q", c.sql, err, c.want)
		}
	}
}
