// Command deploycheck validates everything under deploy/ with the libraries
// the real tools are built on, since this machine has no Docker engine, no
// Kubernetes cluster and no network beyond the package registries:
//
//   - deploy/Dockerfile: BuildKit's own parser and instruction parser, and
//     its built-in lint rules (what `docker build --check` runs), plus a
//     non-root numeric USER in the final stage, pinned base images, the Go
//     version of go.mod, and a build context (deploy/Dockerfile.dockerignore)
//     that keeps every file `go build ./server` reads;
//   - deploy/compose: compose-go, the loader behind `docker compose config`
//     (JSON-schema validation, interpolation, consistency), plus the
//     multi-region wiring and the HAProxy backends;
//   - deploy/k8s: kustomize builds of the base and of every overlay, each
//     object decoded strictly into the official Kubernetes Go types of
//     k8s.io/api (unknown fields, wrong types and unknown kinds fail). Those types are the schema:
//     kubeconform would need JSON schemas downloaded from GitHub, which is not
//     reachable here. Then semantic checks (probes, resources, non-root,
//     selectors of PDBs, HPAs and Services, per-region settings);
//   - deploy/observability: Prometheus' rulefmt (rules and their PromQL), the
//     Grafana dashboard's PromQL, the spec's objectives being alerted on, and
//     every metric named being one the server exports.
//
// Usage: go run . [-root ../..]   (from .ci/deploycheck; `make deploy-check`)
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	root := flag.String("root", "../..", "repository root (go.mod, server/, deploy/)")
	flag.Parse()
	abs, err := filepath.Abs(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg := Config{Root: abs, Deploy: filepath.Join(abs, "deploy")}
	failed := false
	for _, s := range Run(cfg) {
		if len(s.Problems) == 0 {
			fmt.Printf("ok    %s\n", s.Name)
			continue
		}
		failed = true
		fmt.Printf("FAIL  %s\n", s.Name)
		for _, p := range s.Problems {
			fmt.Printf("      - %v\n", p)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// Config says where things are. Root holds go.mod and the server's source;
// Deploy is the deploy/ tree under test (a copy in the tests).
type Config struct {
	Root   string
	Deploy string
}

// Section is one group of checks and what it found wrong.
type Section struct {
	Name     string
	Problems []error
}

// Run runs every check.
func Run(cfg Config) []Section {
	metrics, err := knownMetrics(cfg.Root)
	var metricErrs []error
	if err != nil {
		metricErrs = append(metricErrs, err)
	}
	return []Section{
		{"Dockerfile (BuildKit parser and lint rules)", CheckDockerfile(cfg)},
		{"build context (Dockerfile.dockerignore)", CheckDockerignore(cfg)},
		{"compose (compose-go)", CheckCompose(cfg)},
		{"kubernetes (kustomize + strict API types)", CheckKubernetes(cfg)},
		{"alert rules (Prometheus rulefmt)", append(metricErrs, CheckAlertRules(cfg, metrics)...)},
		{"grafana dashboard", CheckDashboard(cfg, metrics)},
		{"runbook", CheckRunbook(cfg)},
	}
}

// problems collects findings with a common prefix (usually a file name).
type problems struct {
	prefix string
	list   []error
}

func (p *problems) add(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.prefix != "" {
		msg = p.prefix + ": " + msg
	}
	p.list = append(p.list, fmt.Errorf("%s", msg))
}

func (p *problems) err(err error) {
	if err != nil {
		p.add("%v", err)
	}
}

func rel(cfg Config, path string) string {
	if r, err := filepath.Rel(filepath.Dir(cfg.Deploy), path); err == nil {
		return r
	}
	return path
}
