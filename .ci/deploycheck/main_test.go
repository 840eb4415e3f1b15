package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func repo(t *testing.T) Config {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return Config{Root: root, Deploy: filepath.Join(root, "deploy")}
}

// The deploy/ tree as committed passes every check.
func TestRepositoryDeployIsValid(t *testing.T) {
	for _, s := range Run(repo(t)) {
		for _, p := range s.Problems {
			t.Errorf("%s: %v", s.Name, p)
		}
	}
}

// broken is a copy of deploy/ with one edit: replace the first occurrence of
// old with new in file (relative to deploy/).
func broken(t *testing.T, file, old, new string) Config {
	t.Helper()
	cfg := repo(t)
	dst := filepath.Join(t.TempDir(), "deploy")
	if err := os.CopyFS(dst, os.DirFS(cfg.Deploy)); err != nil {
		t.Fatal(err)
	}
	cfg.Deploy = dst
	path := filepath.Join(dst, file)
	dt, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if old == "" {
		dt = append(dt, new...) // append (or create)
	} else {
		if !strings.Contains(string(dt), old) {
			t.Fatalf("fixture: %q is not in %s", old, file)
		}
		dt = []byte(strings.Replace(string(dt), old, new, 1))
	}
	if err := os.WriteFile(path, dt, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

type brokenCase struct {
	name      string
	file      string
	old, new  string
	wantError string
}

// runBroken runs check on each broken copy and wants a problem containing
// wantError.
func runBroken(t *testing.T, cases []brokenCase, check func(Config) []error) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := broken(t, c.file, c.old, c.new)
			errs := check(cfg)
			for _, e := range errs {
				if strings.Contains(e.Error(), c.wantError) {
					return
				}
			}
			t.Errorf("want a problem containing %q, got %d:\n%s", c.wantError, len(errs), joinErrs(errs))
		})
	}
}

func joinErrs(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  - %v\n", e)
	}
	return b.String()
}

func TestDockerfileBroken(t *testing.T) {
	runBroken(t, []brokenCase{
		{"no USER", "Dockerfile", "USER 65532:65532\n", "", "sets no USER"},
		{"USER by name", "Dockerfile", "USER 65532:65532", "USER nonroot", "numeric UID"},
		{"USER root", "Dockerfile", "USER 65532:65532", "USER 0:0", "runs as root"},
		{"untagged base", "Dockerfile", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM gcr.io/distroless/static-debian12", "no tag means latest"},
		{"latest base", "Dockerfile", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM gcr.io/distroless/static-debian12:latest", "moving tag latest"},
		{"older Go than go.mod", "Dockerfile", "ARG GO_VERSION=1.26.8", "ARG GO_VERSION=1.25.0", "go.mod says go"},
		{"lint: legacy ENV", "Dockerfile", "ENV CGO_ENABLED=0", "ENV CGO_ENABLED 0", "LegacyKeyValueFormat"},
		{"lint: FROM AS casing", "Dockerfile", "golang:${GO_VERSION} AS build", "golang:${GO_VERSION} as build", "FromAsCasing"},
		{"lint: undefined variable", "Dockerfile", "COPY --from=build /out/server /usr/local/bin/server", "COPY --from=build /out/server ${BIN_DIR}/server", "UndefinedVar"},
		{"shell-form ENTRYPOINT", "Dockerfile", `ENTRYPOINT ["/usr/local/bin/server"]`, "ENTRYPOINT /usr/local/bin/server", "exec form"},
		{"lint: shell-form ENTRYPOINT", "Dockerfile", `ENTRYPOINT ["/usr/local/bin/server"]`, "ENTRYPOINT /usr/local/bin/server", "JSONArgsRecommended"},
		{"metrics port not exposed", "Dockerfile", "EXPOSE 8080 9090 9464", "EXPOSE 8080 9090", "does not EXPOSE 9464"},
		{"unknown instruction", "Dockerfile", "WORKDIR /src", "WORKDIRR /src", "unknown instruction"},
	}, CheckDockerfile)
}

func TestDockerignoreBroken(t *testing.T) {
	runBroken(t, []brokenCase{
		{"excludes a source dir", "Dockerfile.dockerignore", "!server/\n", "!server/\nserver/storage/sqlstore/\n", "excludes server/storage/sqlstore/"},
		{"excludes embedded files", "Dockerfile.dockerignore", "!server/\n", "!server/\n**/*.html\n", "share/page.html"},
		{"not an allowlist", "Dockerfile.dockerignore", "\n*\n", "\n", "sends .git"},
	}, CheckDockerignore)
}

func TestComposeBroken(t *testing.T) {
	const f = "compose/compose.yaml"
	runBroken(t, []brokenCase{
		{"schema: unknown key", f, "  redis:\n    image:", "  redis:\n    imagee: x\n    image:", "imagee"},
		{"schema: wrong type", f, "      retries: 15", "      retries: many", "retries"},
		{"variable without default", f, "${ADMIN_USER:-}", "${ADMIN_USER:?set ADMIN_USER}", "ADMIN_USER"},
		{"REGION outside DB_REGIONS", f, "      REGION: europe-west1\n", "      REGION: europe-west9\n", "is not one of DB_REGIONS"},
		{"server on another region's node", f, "      DATABASE_URL: postgresql://root@roach-europe-west1:26257", "      DATABASE_URL: postgresql://root@roach-us-east1:26257", "each region's servers use their own region's node"},
		{"migrate regions differ from nodes", f, "x-regions: &db-regions us-east1,europe-west1,asia-southeast1", "x-regions: &db-regions us-east1,europe-west1", "but the CockroachDB nodes are in"},
		{"healthy condition without healthcheck", f, "    healthcheck:\n      test: [\"CMD\", \"redis-cli\", \"ping\"]\n      interval: 2s\n      timeout: 2s\n      retries: 15\n", "", "redis has no healthcheck"},
		{"servers before migrations", f, "    migrate:\n      condition: service_completed_successfully", "    migrate:\n      condition: service_started", "must depend on migrate"},
		{"unpinned image", f, "image: redis:7.4-alpine", "image: redis", "is not pinned"},
		{"balancer to an unknown service", f[:8] + "haproxy.cfg", "server-asia-southeast1:9090", "server-asia-southeast2:9090", "not a service of compose.yaml"},
		{"built-in gateway secret", f, "  DB_REGIONS: *db-regions\n", "  DB_REGIONS: *db-regions\n  GATEWAY_SECRET: dev-secret\n", "GATEWAY_SECRET is written in the file"},
		{"built-in admin password", f, "${ADMIN_PASSWORD:-}", "${ADMIN_PASSWORD:-admin123}", "ADMIN_PASSWORD is written in the file"},
		{"admin password in argv", f, "    command: [\"migrate\"]", "    command: [\"migrate\", \"--admin-password=x\"]", "--admin-password on the command line"},
		{"trusts all of 10/8", f, "TRUSTED_PROXIES: 172.28.0.10/32", "TRUSTED_PROXIES: 172.28.0.10/32,10.0.0.0/8", "all of the private range 10.0.0.0/8"},
		{"trusts the internet", f, "TRUSTED_PROXIES: 172.28.0.10/32", "TRUSTED_PROXIES: 0.0.0.0/0", "wider than any load balancer"},
		{"balancer misses a server", f[:8] + "haproxy.cfg", "    server europe-west1 server-europe-west1:8080 check\n", "", "leaves out server server-europe-west1"},
	}, CheckCompose)
}

func TestKubernetesBroken(t *testing.T) {
	const server, gateway, base = "k8s/base/server.yaml", "k8s/base/gateway.yaml", "k8s/base/kustomization.yaml"
	runBroken(t, []brokenCase{
		{"unknown field", server, "  minReadySeconds: 10\n", "  minReadySeconds: 10\n  replicaz: 3\n", `unknown field "spec.replicaz"`},
		{"wrong type", server, "  minReadySeconds: 10\n", "  minReadySeconds: ten\n", "minReadySeconds"},
		{"unknown kind", server, "", "---\napiVersion: apps/v1\nkind: Deploymnt\nmetadata:\n  name: x\n", `no kind "Deploymnt"`},
		{"removed API version", server, "apiVersion: autoscaling/v2\n", "apiVersion: autoscaling/v2beta2\n", `no kind "HorizontalPodAutoscaler" is registered for version "autoscaling/v2beta2"`},
		{"beta API version", server, "apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n", `no kind "PodDisruptionBudget" is registered for version "policy/v1beta1"`},
		{"kind outside the registered groups", server, "", "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: x\n", `no kind "NetworkPolicy" is registered`},
		{"kustomize error", base, "  - gateway.yaml\n", "  - gateway.yaml\n  - missing.yaml\n", "kustomize build"},
		{"PDB selects nothing", server, "      app.kubernetes.io/component: server\n---\napiVersion: autoscaling/v2", "      app.kubernetes.io/component: servr\n---\napiVersion: autoscaling/v2", "0 PodDisruptionBudgets select its pods"},
		{"HPA targets another name", server, "    name: platform-server\n  minReplicas: 3", "    name: platform-servr\n  minReplicas: 3", "targets Deployment/platform-servr"},
		{"HPA without CPU", gateway, "        name: cpu\n", "        name: memory\n", "no CPU resource metric"},
		{"replicas fight the HPA", server, "  revisionHistoryLimit: 10\n", "  replicas: 3\n  revisionHistoryLimit: 10\n", "sets replicas"},
		{"no readiness probe", gateway, "          readinessProbe:\n", "          startupProbe:\n", "no readinessProbe"},
		{"gateway ready on liveness alone", gateway, "              path: /readyz\n", "              path: /healthz\n", "GET /readyz"},
		{"server readiness not gRPC", server, "          readinessProbe:\n            grpc:\n              port: 9090\n", "          readinessProbe:\n            httpGet:\n              path: /healthz\n              port: http\n", "gRPC health service"},
		{"probe on an undeclared port", server, "              port: http\n            periodSeconds: 10", "              port: admin\n            periodSeconds: 10", "port admin is not a declared container port"},
		{"root allowed", gateway, "            runAsNonRoot: true\n", "            runAsNonRoot: false\n", "runAsNonRoot must be true"},
		{"writable root filesystem", gateway, "            readOnlyRootFilesystem: true\n", "            readOnlyRootFilesystem: false\n", "readOnlyRootFilesystem must be true"},
		{"no resource requests", gateway, "            requests:\n              cpu: 250m\n              memory: 128Mi\n", "", "set resources.requests"},
		{"no zone spread", gateway, "          topologyKey: topology.kubernetes.io/zone\n", "          topologyKey: example.com/rack\n", "no topologySpreadConstraint"},
		{"service port not on the pod", server, "      targetPort: metrics\n", "      targetPort: metricz\n", "targets metricz"},
		{"job without deadline", "k8s/base/migrate-job.yaml", "  activeDeadlineSeconds: 1800\n", "", "activeDeadlineSeconds"},
		{"secret key not in the runbook", "README.md", "--from-literal=redis-url=", "--from-literal=redis=", "key redis-url of Secret platform-secrets"},
		{"overlay REGION outside DB_REGIONS", "k8s/overlays/europe-west1/kustomization.yaml", "      - REGION=europe-west1\n", "      - REGION=europe-west2\n", "is not one of DB_REGIONS"},
		{"overlay pinned to another region", "k8s/overlays/europe-west1/kustomization.yaml", "                      values: [europe-west1]", "                      values: [us-east1]", "want [europe-west1]"},
		{"overlay trusts 10/8", "k8s/overlays/us-east1/kustomization.yaml", "TRUSTED_PROXIES=130.211.0.0/22,35.191.0.0/16", "TRUSTED_PROXIES=10.0.0.0/8", "all of the private range 10.0.0.0/8"},
		{"overlay trusts a /12", "k8s/overlays/asia-southeast1/kustomization.yaml", "TRUSTED_PROXIES=130.211.0.0/22,35.191.0.0/16", "TRUSTED_PROXIES=172.16.0.0/12", "all of the private range 172.16.0.0/12"},
		{"gateway secret in the ConfigMap", base, "      - TRUSTED_PROXIES=\n", "      - TRUSTED_PROXIES=\n      - GATEWAY_SECRET=dev-secret\n", "holds GATEWAY_SECRET"},
		{"gateway secret written in the manifest", gateway, "            - name: GATEWAY_SECRET\n              valueFrom:\n                secretKeyRef:\n                  name: platform-secrets\n                  key: gateway-secret\n", "            - name: GATEWAY_SECRET\n              value: dev-secret\n", "env GATEWAY_SECRET must come from a Secret"},
		{"admin password in argv", server, `          args: ["serve"]`, `          args: ["serve", "--admin-password", "x"]`, "--admin-password on the command line"},
		{"region without overlay", base, "DB_REGIONS=us-east1,europe-west1,asia-southeast1", "DB_REGIONS=us-east1,europe-west1,asia-southeast1,us-west1", "database region us-west1 has no overlay"},
	}, CheckKubernetes)
}

func TestObservabilityBroken(t *testing.T) {
	cfg := repo(t)
	known, err := knownMetrics(cfg.Root)
	if err != nil {
		t.Fatal(err)
	}
	rules := func(c Config) []error { return CheckAlertRules(c, known) }
	const f = "observability/alerts.yaml"
	runBroken(t, []brokenCase{
		{"PromQL syntax", f, `grpc_method="SetFavorite"}[5m]))) > 0.3`, `grpc_method="SetFavorite"}[5m]))) > > 0.3`, "FavoriteSaveLatencyHigh"},
		{"objective loosened", f, `grpc_method="SetFavorite"}[5m]))) > 0.3`, `grpc_method="SetFavorite"}[5m]))) > 0.5`, "no alert on favorite.v1.FavoriteService/SetFavorite p95 > 0.3s"},
		{"objective on another quantile", f, `histogram_quantile(0.99, sum by (le) (rate(grpc_server_handling_seconds_bucket{grpc_service="vote.v1.VoteService", grpc_method="CastVote"}`, `histogram_quantile(0.9, sum by (le) (rate(grpc_server_handling_seconds_bucket{grpc_service="vote.v1.VoteService", grpc_method="CastVote"}`, "CastVote p99"},
		{"no error-rate alert", f, "expr: grpc_service:grpc_server_errors:ratio_rate5m > 0.01", "expr: grpc_service:grpc_server_errors:ratio_rate5m > 0.05", "error ratio above 1%"},
		{"unknown metric", f, "max(vote_queue_depth) > 1000", "max(vote_queue_size) > 1000", "metric vote_queue_size is not exported"},
		{"unknown rule field", f, "        for: 10m\n", "        forr: 10m\n", "forr"},
		{"bad annotation template", f, "{{ $value | humanizeDuration }} (objective < 300ms)", "{{ $value | nosuchfunc }} (objective < 300ms)", "nosuchfunc"},
		{"no severity", f, "          severity: page\n          slo: favorite-save-p95\n", "          slo: favorite-save-p95\n", "severity label"},
		{"runbook anchor gone", "README.md", "### Queue or stream lag", "### Queues", "deploy/README.md#queue-or-stream-lag"},
	}, rules)

	dash := func(c Config) []error { return CheckDashboard(c, known) }
	const d = "observability/dashboard.json"
	runBroken(t, []brokenCase{
		{"not JSON", d, `"panels": [`, `"panels": [,`, "not valid JSON"},
		{"PromQL syntax", d, `"expr": "sum by (grpc_service) (rate(grpc_server_handled_total[$__rate_interval]))"`, `"expr": "sum by (grpc_service (rate(grpc_server_handled_total[$__rate_interval]))"`, "Calls per second by service"},
		{"unknown metric", d, "vote_batch_size_bucket", "vote_batch_sizes_bucket", "metric vote_batch_sizes_bucket is not exported"},
		{"duplicate panel id", d, `"id": 3,`, `"id": 2,`, "panel ids must be unique"},
		{"fixed datasource", d, `"uid": "${datasource}"`, `"uid": "prom-1"`, "datasource must be the ${datasource} variable"},
	}, dash)

	runBroken(t, []brokenCase{
		{"section missing", "README.md", "### Rotate secrets", "### Secrets", "no section #rotate-secrets"},
		{"capacity model missing", "README.md", "## Capacity model", "## Capacity", "no section #capacity-model"},
	}, CheckRunbook)
}

// The metric names come from the server's source, including go-grpc-
// middleware's, and histogram series resolve to their family.
func TestKnownMetrics(t *testing.T) {
	known, err := knownMetrics(repo(t).Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"grpc_server_handled_total", "grpc_server_handling_seconds_bucket", "cache_requests_total", "ratelimit_rejections_total", "go_goroutines"} {
		if !metricKnown(known, m) {
			t.Errorf("%s not known", m)
		}
	}
	for _, m := range []string{"grpc_server_handling_seconds_total", "nonexistent_metric", "cache_requests_total_bucket"} {
		if metricKnown(known, m) {
			t.Errorf("%s taken as known", m)
		}
	}
}

func TestAnchor(t *testing.T) {
	for h, want := range map[string]string{
		"Error rate above 1%":        "error-rate-above-1",
		"Roll out":                   "roll-out",
		"Redis across regions":       "redis-across-regions",
		"`make deploy-check` output": "make-deploy-check-output",
	} {
		if got := anchor(h); got != want {
			t.Errorf("anchor(%q) = %q, want %q", h, got, want)
		}
	}
}
