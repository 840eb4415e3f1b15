package app_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/apiplatform/platform/server/app"
	"github.com/apiplatform/platform/server/platform/telemetry"
)

// One REST call is one trace: the gateway's HTTP span, the gRPC client and
// server spans of the hop to the service, and the database and Redis spans
// under them.
func TestTraceCrossesEveryHop(t *testing.T) {
	// What main does at start (the propagator), then an in-memory exporter
	// instead of OTLP.
	if _, err := telemetry.StartTracing(t.Context(), "", "test", "test-region"); err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(t.Context()) })

	var be backend
	for _, b := range backends() {
		be = b // the last: PostgreSQL + Redis when available
	}
	p := start(t, be, func(cfg *app.Config) { cfg.Tracing = true }) // what an OTLP endpoint turns on
	r := newREST(p)
	_, tok := r.guest(t)
	before := len(rec.Ended())
	if _, err := r.setFavorite(t, tok, "orchid", ""); err != nil {
		t.Fatal(err)
	}
	if err := tp.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}

	spans := rec.Ended()[before:]
	describe := func() []string {
		var out []string
		for _, s := range spans {
			out = append(out, s.InstrumentationScope().Name+": "+s.Name()+" ("+s.SpanKind().String()+")")
		}
		return out
	}
	var httpSpan sdktrace.ReadOnlySpan
	for _, s := range spans {
		if strings.HasSuffix(s.InstrumentationScope().Name, "/otelhttp") && s.SpanKind().String() == "server" {
			httpSpan = s
		}
	}
	if httpSpan == nil {
		t.Fatalf("no gateway HTTP span; spans: %v", describe())
	}
	trace := httpSpan.SpanContext().TraceID()
	found := map[string]bool{}
	for _, s := range spans {
		if s.SpanContext().TraceID() != trace {
			continue
		}
		scope, kind := s.InstrumentationScope().Name, s.SpanKind().String()
		switch {
		case strings.HasSuffix(scope, "/otelgrpc") && kind == "client" && s.Name() == "favorite.v1.FavoriteService/SetFavorite":
			found["grpc client"] = true
		case strings.HasSuffix(scope, "/otelgrpc") && kind == "server" && s.Name() == "favorite.v1.FavoriteService/SetFavorite":
			found["grpc server"] = true
		case strings.Contains(scope, "otelpgx"):
			found["database"] = true
		case strings.Contains(scope, "redisotel"):
			found["redis"] = true
		}
	}
	want := []string{"grpc client", "grpc server"}
	if be.name != "embedded" {
		want = append(want, "database", "redis")
	}
	for _, w := range want {
		if !found[w] {
			t.Fatalf("no %s span in the request's trace; spans: %v", w, describe())
		}
	}
}
