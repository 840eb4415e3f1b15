// Command dumpddl writes every SQL statement sqlstore can run on a database
// into a directory, one statement per file, for CockroachDB's parser to
// check (.ci/crdbparse, `make crdb-parse`):
//
//	portable/     the embedded portable migrations, as embedded
//	cockroachdb/  the embedded CockroachDB-only migrations
//	regions-N/    MultiRegionDDL for 1, 2 and 3 regions
//
// Usage: go run ./server/storage/sqlstore/internal/dumpddl DIR
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/apiplatform/platform/server/storage/sqlstore"
)

var regionSets = [][]string{
	{"us-east1"},
	{"us-east1", "europe-west1"},
	{"us-east1", "europe-west1", "asia-southeast1"},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dumpddl DIR")
		os.Exit(2)
	}
	if err := dump(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "dumpddl:", err)
		os.Exit(1)
	}
}

func dump(dir string) error {
	files := sqlstore.MigrationFiles()
	n := 0
	err := fs.WalkDir(files, "migrations", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".sql") {
			return err
		}
		b, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		sub := "portable"
		if filepath.Base(filepath.Dir(path)) == "cockroachdb" {
			sub = "cockroachdb"
		}
		n++
		return write(filepath.Join(dir, sub, d.Name()), b)
	})
	if err != nil {
		return err
	}
	for _, regions := range regionSets {
		stmts, err := sqlstore.MultiRegionDDL("platform", regions)
		if err != nil {
			return err
		}
		for i, stmt := range stmts {
			n++
			name := filepath.Join(dir, fmt.Sprintf("regions-%d", len(regions)), fmt.Sprintf("%02d.sql", i+1))
			if err := write(name, []byte(stmt+"\n")); err != nil {
				return err
			}
		}
	}
	fmt.Printf("dumpddl: %d statements written to %s\n", n, dir)
	return nil
}

func write(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o644)
}
