package main

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

var promql = parser.NewParser(parser.Options{})

// Metrics scraped from elsewhere than the platform's own /metrics.
var externalMetrics = map[string]string{
	"up": "Prometheus' own series per scrape target",
	// CockroachDB's /_status/vars (a separate scrape job).
	"ranges_unavailable":     "cockroachdb",
	"ranges_underreplicated": "cockroachdb",
}

// Metric families of client_golang's default registry (Go runtime and
// process collectors), which the server's /metrics serves.
var defaultRegistryPrefixes = []string{"go_", "process_", "promhttp_"}

// go-grpc-middleware's Prometheus provider (server side), registered by
// server/platform/telemetry.
var grpcServerMetrics = []string{
	"grpc_server_started_total", "grpc_server_handled_total",
	"grpc_server_msg_received_total", "grpc_server_msg_sent_total",
}

var (
	metricNameRE = regexp.MustCompile(`\bName:\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"`)
	// The constructor before a Name tells its type; only histograms and
	// summaries have _bucket/_sum/_count series.
	metricCtorRE = regexp.MustCompile(`New(Counter|Gauge|Histogram|Summary)(?:Vec|Func)?\(`)
)

// metricKind is what a known name is: "counter", "gauge", "histogram",
// "summary".
type metricKind = string

// knownMetrics returns the metric names the server exports, read from its
// source: every Name of a client_golang *Opts in a non-test file that
// imports client_golang, plus the gRPC middleware's.
func knownMetrics(root string) (map[string]metricKind, error) {
	known := map[string]metricKind{}
	for _, dir := range []string{"server", "gateway"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			s := string(src)
			if !strings.Contains(s, "github.com/prometheus/client_golang/prometheus") && !strings.Contains(s, "go-grpc-middleware/providers/prometheus") {
				return nil
			}
			for _, m := range metricNameRE.FindAllStringSubmatchIndex(s, -1) {
				kind := "untyped"
				if ctors := metricCtorRE.FindAllStringSubmatch(s[:m[0]], -1); len(ctors) > 0 {
					kind = strings.ToLower(ctors[len(ctors)-1][1])
				}
				known[s[m[2]:m[3]]] = kind
			}
			if strings.Contains(s, "grpcprom.NewServerMetrics") {
				for _, n := range grpcServerMetrics {
					known[n] = "counter"
				}
				if strings.Contains(s, "WithServerHandlingTimeHistogram") {
					known["grpc_server_handling_seconds"] = "histogram"
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(known) == 0 {
		return nil, fmt.Errorf("found no metric definitions under server/")
	}
	return known, nil
}

// metricKnown accepts a name the server exports (histograms and summaries
// by their _bucket/_sum/_count series too) or a documented external one.
func metricKnown(known map[string]metricKind, name string) bool {
	if known[name] != "" || externalMetrics[name] != "" {
		return true
	}
	for _, pfx := range defaultRegistryPrefixes {
		if strings.HasPrefix(name, pfx) {
			return true
		}
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if ok && (known[base] == "histogram" || (known[base] == "summary" && suffix != "_bucket")) {
			return true
		}
	}
	return false
}

// metricNames lists the metric names an expression selects.
func metricNames(expr parser.Expr) []string {
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			if name != "" && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		return nil
	})
	return names
}

// objective is one of the spec's latency targets, as an alert must state it.
type objective struct {
	service, method string
	quantile        float64
	seconds         float64
}

var objectives = []objective{
	{"favorite.v1.FavoriteService", "SetFavorite", 0.95, 0.3},
	{"favorite.v1.FavoriteService", "GetFavorite", 0.95, 0.2},
	{"shortener.v1.ShortenerService", "FollowShortUrl", 0.95, 0.05},
	{"shortener.v1.ShortenerService", "CreateShortUrl", 0.95, 0.1},
	{"vote.v1.VoteService", "CastVote", 0.99, 0.15},
	{"vote.v1.VoteService", "GetResults", 0.99, 0.2},
}

// CheckAlertRules parses the rules with Prometheus' rulefmt (YAML structure,
// unknown fields, PromQL of every expression, templates of annotations),
// then checks every metric is exported, every alert is routed and linked to
// the runbook, and every objective of the spec is alerted on.
func CheckAlertRules(cfg Config, known map[string]metricKind) []error {
	path := filepath.Join(cfg.Deploy, "observability", "alerts.yaml")
	p := &problems{prefix: rel(cfg, path)}
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, e := range errs {
		p.err(e)
	}
	if groups == nil || len(errs) > 0 {
		return p.list
	}
	headings := runbookAnchors(cfg)
	recorded := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	var alerts []parser.Expr
	errorRatio := false
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			expr, err := promql.ParseExpr(r.Expr)
			if err != nil {
				p.add("%s: %v", name, err)
				continue
			}
			for _, m := range metricNames(expr) {
				if !metricKnown(known, m) && !recorded[m] {
					p.add("%s: metric %s is not exported by the server (nor recorded by a rule here)", name, m)
				}
			}
			if r.Alert == "" {
				if strings.Contains(r.Expr, "grpc_server_handled_total") && strings.Contains(r.Record, "error") {
					errorRatio = true
				}
				continue
			}
			alerts = append(alerts, expr)
			if sev := r.Labels["severity"]; sev != "page" && sev != "ticket" {
				p.add("%s: severity label %q; want page or ticket (what the routing knows)", name, sev)
			}
			if r.Annotations["summary"] == "" {
				p.add("%s: no summary annotation", name)
			}
			rb := r.Annotations["runbook"]
			_, anchor, _ := strings.Cut(rb, "#")
			if !strings.HasPrefix(rb, "deploy/README.md#") || !headings[anchor] {
				p.add("%s: runbook %q is not a heading of deploy/README.md", name, rb)
			}
		}
	}
	for _, o := range objectives {
		if !slices.ContainsFunc(alerts, func(e parser.Expr) bool { return alertsOn(e, o) }) {
			p.add("no alert on %s/%s p%g > %gs (the spec's objective)", o.service, o.method, o.quantile*100, o.seconds)
		}
	}
	if !errorRatio || !slices.ContainsFunc(alerts, func(e parser.Expr) bool { return comparesAbove(e, 0.01) }) {
		p.add("no alert on a server error ratio above 1%% of grpc_server_handled_total")
	}
	return p.list
}

// alertsOn reports whether expr is `histogram_quantile(q, ...) > t` over
// grpc_server_handling_seconds selecting the objective's service and method.
func alertsOn(expr parser.Expr, o objective) bool {
	found := false
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		be, ok := n.(*parser.BinaryExpr)
		if !ok || be.Op != parser.GTR {
			return nil
		}
		t, ok := unparen(be.RHS).(*parser.NumberLiteral)
		if !ok || math.Abs(t.Val-o.seconds) > 1e-9 {
			return nil
		}
		call, ok := unparen(be.LHS).(*parser.Call)
		if !ok || call.Func.Name != "histogram_quantile" || len(call.Args) != 2 {
			return nil
		}
		q, ok := unparen(call.Args[0]).(*parser.NumberLiteral)
		if !ok || math.Abs(q.Val-o.quantile) > 1e-9 {
			return nil
		}
		parser.Inspect(call.Args[1], func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok || vs.Name != "grpc_server_handling_seconds_bucket" {
				return nil
			}
			if matches(vs.LabelMatchers, "grpc_service", o.service) && matches(vs.LabelMatchers, "grpc_method", o.method) {
				found = true
			}
			return nil
		})
		return nil
	})
	return found
}

func comparesAbove(expr parser.Expr, threshold float64) bool {
	found := false
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if be, ok := n.(*parser.BinaryExpr); ok && be.Op == parser.GTR {
			if t, ok := unparen(be.RHS).(*parser.NumberLiteral); ok && math.Abs(t.Val-threshold) < 1e-9 {
				found = true
			}
		}
		return nil
	})
	return found
}

func matches(ms []*labels.Matcher, name, value string) bool {
	for _, m := range ms {
		if m.Name == name {
			return m.Matches(value)
		}
	}
	return false
}

func unparen(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// grafanaVars are Grafana's interval macros, replaced by a duration before
// the PromQL is parsed.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "${__rate_interval}", "5m", "$__interval", "1m", "${__interval}", "1m", "$__range", "1h", "${__range}", "1h")

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// CheckDashboard checks the Grafana dashboard: valid JSON with a uid and a
// Prometheus datasource variable, unique panel ids inside the 24-column
// grid, and PromQL in every target that parses and names exported metrics.
func CheckDashboard(cfg Config, known map[string]metricKind) []error {
	path := filepath.Join(cfg.Deploy, "observability", "dashboard.json")
	p := &problems{prefix: rel(cfg, path)}
	dt, err := os.ReadFile(path)
	if err != nil {
		p.err(err)
		return p.list
	}
	var d struct {
		UID           string  `json:"uid"`
		Title         string  `json:"title"`
		SchemaVersion int     `json:"schemaVersion"`
		Panels        []panel `json:"panels"`
		Templating    struct {
			List []struct {
				Name, Type, Query string
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(string(dt)))
	if err := dec.Decode(&d); err != nil {
		p.add("not valid JSON: %v", err)
		return p.list
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		p.add("needs uid, title and schemaVersion")
	}
	if !slices.ContainsFunc(d.Templating.List, func(v struct{ Name, Type, Query string }) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	}) {
		p.add("needs a datasource variable of type prometheus (panels refer to ${datasource})")
	}
	ids := map[int]bool{}
	queries := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, pn := range ps {
			id := fmt.Sprintf("panel %d %q", pn.ID, pn.Title)
			if pn.ID == 0 || ids[pn.ID] {
				p.add("%s: panel ids must be unique and non-zero", id)
			}
			ids[pn.ID] = true
			if pn.GridPos == nil || pn.GridPos.W <= 0 || pn.GridPos.H <= 0 || pn.GridPos.X < 0 || pn.GridPos.X+pn.GridPos.W > 24 {
				p.add("%s: gridPos missing or outside the 24-column grid", id)
			}
			walk(pn.Panels)
			if pn.Type == "row" {
				continue
			}
			if pn.Title == "" {
				p.add("%s: no title", id)
			}
			if !strings.Contains(string(pn.Datasource), "${datasource}") {
				p.add("%s: datasource must be the ${datasource} variable", id)
			}
			if len(pn.Targets) == 0 {
				p.add("%s: no query", id)
			}
			for _, t := range pn.Targets {
				queries++
				expr, err := promql.ParseExpr(grafanaVars.Replace(t.Expr))
				if err != nil {
					p.add("%s %s: %v", id, t.RefID, err)
					continue
				}
				for _, m := range metricNames(expr) {
					if !metricKnown(known, m) {
						p.add("%s %s: metric %s is not exported by the server", id, t.RefID, m)
					}
				}
			}
		}
	}
	walk(d.Panels)
	if queries == 0 {
		p.add("no queries")
	}
	return p.list
}

var headingRE = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)

// runbookAnchors returns the GitHub anchors of deploy/README.md's headings.
func runbookAnchors(cfg Config) map[string]bool {
	dt, err := os.ReadFile(filepath.Join(cfg.Deploy, "README.md"))
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, m := range headingRE.FindAllStringSubmatch(string(dt), -1) {
		out[anchor(m[1])] = true
	}
	return out
}

// anchor is GitHub's heading slug: lower case, punctuation dropped, spaces
// to hyphens.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		case r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// The runbook's sections the issue asks for.
var runbookSections = []string{
	"roll-out", "roll-back", "add-a-region", "survive-a-region-loss", "rotate-secrets", "capacity-model",
}

// CheckRunbook checks deploy/README.md has the sections operators look for.
func CheckRunbook(cfg Config) []error {
	p := &problems{prefix: "deploy/README.md"}
	anchors := runbookAnchors(cfg)
	if anchors == nil {
		p.add("missing")
		return p.list
	}
	for _, s := range runbookSections {
		if !anchors[s] {
			p.add("no section #%s", s)
		}
	}
	return p.list
}
