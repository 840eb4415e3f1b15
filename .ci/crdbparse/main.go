// Command crdbparse checks SQL files with CockroachDB's own parser: every
// *.sql file under the given directories must hold exactly one statement
// that parses. It runs over what dumpddl writes (every migration and the
// generated multi-region statements); see `make crdb-parse`.
//
// It is a module of its own so that the parser's dependencies stay out of
// the server's go.mod.
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cockroachdb/cockroachdb-parser/pkg/sql/parser"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crdbparse DIR...")
		os.Exit(2)
	}
	var files []string
	for _, dir := range os.Args[1:] {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".sql") {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "crdbparse:", err)
			os.Exit(2)
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "crdbparse: no .sql files found")
		os.Exit(1)
	}
	failed := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			err = check(string(b))
		}
		if err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "crdbparse: %s: %v\n", f, err)
		}
	}
	fmt.Printf("crdbparse: %d files checked with CockroachDB's parser, %d rejected\n", len(files), failed)
	if failed > 0 {
		os.Exit(1)
	}
}

// check accepts sql if it is exactly one statement CockroachDB can parse.
func check(sql string) error {
	stmts, err := parser.Parse(sql)
	if err != nil {
		return err
	}
	if len(stmts) != 1 {
		return fmt.Errorf("holds %d statements, want exactly 1", len(stmts))
	}
	return nil
}
