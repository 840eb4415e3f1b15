package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// CheckCompose loads deploy/compose/compose.yaml the way `docker compose
// config` does (schema validation, interpolation with an empty environment,
// so every variable needs a default; consistency checks), then checks the
// multi-region wiring: one CockroachDB node per region, a server per region
// talking to its own region's node, migrations before servers, health
// conditions that can be met, and an HAProxy config whose backends exist.
func CheckCompose(cfg Config) []error {
	dir := filepath.Join(cfg.Deploy, "compose")
	path := filepath.Join(dir, "compose.yaml")
	p := &problems{prefix: rel(cfg, path)}
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithWorkingDirectory(dir),
		cli.WithEnv(nil),
		cli.WithInterpolation(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		p.err(err)
		return p.list
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		p.err(err)
		return p.list
	}

	// CockroachDB nodes and their regions (--locality=region=...).
	nodeRegion := map[string]string{}
	var nodeRegions []string
	for name, s := range project.Services {
		if !strings.Contains(s.Image, "cockroachdb/cockroach") || !slices.Contains(s.Command, "start") {
			continue
		}
		region := flagValue(s.Command, "--locality")
		region = localityRegion(region)
		if region == "" {
			p.add("service %s: CockroachDB node without --locality=region=...", name)
			continue
		}
		if slices.Contains(nodeRegions, region) {
			p.add("service %s: region %s has two nodes; this topology wants one node per region", name, region)
		}
		nodeRegion[name] = region
		nodeRegions = append(nodeRegions, region)
		if flagValue(s.Command, "--join") == "" {
			p.add("service %s: no --join", name)
		}
	}
	if len(nodeRegions) < 3 {
		p.add("%d CockroachDB regions; surviving a region failure needs at least 3", len(nodeRegions))
	}

	for name, s := range project.Services {
		// Images: pinned, unless built here.
		if s.Build == nil {
			if err := pinned(s.Image); err != nil {
				p.add("service %s: %v", name, err)
			}
		} else {
			df := filepath.Join(s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(df); err != nil {
				p.add("service %s: build: %v", name, err)
			}
		}
		// A service_healthy condition on a service without a healthcheck
		// never becomes true: `up` would fail.
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionHealthy {
				if t, ok := project.Services[dep]; ok && (t.HealthCheck == nil || t.HealthCheck.Disable || len(t.HealthCheck.Test) == 0) {
					p.add("service %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			}
		}
	}

	// The platform's own services: those built from deploy/Dockerfile.
	var servers []string
	sawMigrate := false
	for name, s := range project.Services {
		if s.Build == nil {
			continue
		}
		env := s.Environment
		sub := "serve"
		if len(s.Command) > 0 {
			sub = s.Command[0]
		}
		regions := splitList(envValue(env, "DB_REGIONS"))
		region := envValue(env, "REGION")
		// Interpolated with an empty environment: a value here is written
		// in the file itself.
		for _, k := range secretSettings {
			if envValue(env, k) != "" {
				p.add("service %s: %s is written in the file; read it from the environment or a secret, never ship one", name, k)
			}
		}
		for _, f := range argSecrets(s.Command) {
			p.add("service %s: %s on the command line is visible in ps; use the environment or a file", name, f)
		}
		for _, e := range checkTrustedProxies(envValue(env, "TRUSTED_PROXIES")) {
			p.add("service %s: %s", name, e)
		}
		switch sub {
		case "migrate":
			sawMigrate = true
			if !slices.Equal(sortedCopy(regions), sortedCopy(nodeRegions)) {
				p.add("service %s: DB_REGIONS=%s, but the CockroachDB nodes are in %v", name, strings.Join(regions, ","), sortedCopy(nodeRegions))
			}
		case "serve":
			servers = append(servers, name)
			if d, ok := s.DependsOn["migrate"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
				p.add("service %s must depend on migrate with condition service_completed_successfully", name)
			}
			if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
				p.add("service %s has no healthcheck", name)
			}
		default:
			continue
		}
		if len(regions) > 0 && !slices.Contains(regions, region) {
			// The server refuses to start with a REGION outside DB_REGIONS.
			p.add("service %s: REGION=%q is not one of DB_REGIONS %v", name, region, regions)
		}
		if host := dbHost(envValue(env, "DATABASE_URL")); host == "" {
			p.add("service %s: no DATABASE_URL", name)
		} else if nr, ok := nodeRegion[host]; !ok {
			p.add("service %s: DATABASE_URL host %q is not a CockroachDB node of this file", name, host)
		} else if sub == "serve" && nr != region {
			p.add("service %s (REGION=%s) talks to %s in %s: each region's servers use their own region's node", name, region, host, nr)
		}
	}
	if !sawMigrate {
		p.add("no service runs the migrate subcommand")
	}
	servedRegions := map[string]bool{}
	for _, name := range servers {
		servedRegions[envValue(project.Services[name].Environment, "REGION")] = true
	}
	for _, r := range nodeRegions {
		if !servedRegions[r] {
			p.add("region %s has a CockroachDB node but no server", r)
		}
	}

	// The load balancer's backends.
	var sawLB bool
	for name, s := range project.Services {
		for _, v := range s.Volumes {
			if filepath.Base(v.Source) != "haproxy.cfg" {
				continue
			}
			sawLB = true
			for _, e := range checkHAProxy(v.Source, project, servers) {
				p.add("service %s: %v", name, e)
			}
		}
	}
	if !sawLB {
		p.add("no load balancer (a service mounting haproxy.cfg)")
	}
	return p.list
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func localityRegion(locality string) string {
	for _, kv := range strings.Split(locality, ",") {
		if v, ok := strings.CutPrefix(kv, "region="); ok {
			return v
		}
	}
	return ""
}

func envValue(env types.MappingWithEquals, key string) string {
	if v, ok := env[key]; ok && v != nil {
		return *v
	}
	return ""
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func dbHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Hostname()
}

// pinned accepts an image reference with a tag other than latest, or a digest.
func pinned(image string) error {
	if image == "" {
		return fmt.Errorf("no image")
	}
	if strings.Contains(image, "@sha256:") {
		return nil
	}
	last := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	switch {
	case !ok || tag == "":
		return fmt.Errorf("image %q is not pinned: give it a tag or a digest", image)
	case tag == "latest":
		return fmt.Errorf("image %q uses the moving tag latest", image)
	}
	return nil
}

var haproxyServerRE = regexp.MustCompile(`^\s*server\s+(\S+)\s+(\S+)`)

// checkHAProxy checks that every backend server of the HAProxy config is a
// compose service listening on that port, that every platform server is in
// every backend, and, where an haproxy binary is installed, that HAProxy
// itself accepts the file (`haproxy -c`; only name resolution may warn,
// since compose's DNS is not here).
func checkHAProxy(path string, project *types.Project, servers []string) []error {
	dt, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	var errs []error
	backends := map[string][]string{} // backend -> hosts
	var backend string
	sc := bufio.NewScanner(bytes.NewReader(dt))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "backend" {
			backend = f[1]
			backends[backend] = nil
			continue
		}
		m := haproxyServerRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		host, port, err := net.SplitHostPort(m[2])
		if err != nil {
			errs = append(errs, fmt.Errorf("haproxy.cfg: server %s: %v", m[1], err))
			continue
		}
		backends[backend] = append(backends[backend], host)
		if _, ok := project.Services[host]; !ok {
			errs = append(errs, fmt.Errorf("haproxy.cfg: backend %s sends to %s, which is not a service of compose.yaml", backend, host))
			continue
		}
		if slices.Contains(servers, host) && port != "8080" && port != "9090" {
			errs = append(errs, fmt.Errorf("haproxy.cfg: backend %s sends to %s:%s; the server listens on 8080 (REST) and 9090 (gRPC)", backend, host, port))
		}
	}
	if len(backends) == 0 {
		errs = append(errs, fmt.Errorf("haproxy.cfg: no backend"))
	}
	for b, hosts := range backends {
		for _, s := range servers {
			if !slices.Contains(hosts, s) {
				errs = append(errs, fmt.Errorf("haproxy.cfg: backend %s leaves out server %s", b, s))
			}
		}
	}
	if bin, err := exec.LookPath("haproxy"); err == nil {
		out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput()
		if err != nil {
			errs = append(errs, fmt.Errorf("haproxy -c: %v\n%s", err, out))
		}
		for _, line := range strings.Split(string(out), "\n") {
			if (strings.Contains(line, "[WARNING]") || strings.Contains(line, "[ALERT]")) && !strings.Contains(line, "could not resolve address") {
				errs = append(errs, fmt.Errorf("haproxy -c: %s", strings.TrimSpace(line)))
			}
		}
	}
	return errs
}
