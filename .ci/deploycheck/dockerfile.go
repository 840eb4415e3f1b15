package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Ports the image must declare: REST, gRPC, metrics.
var wantExposed = []string{"8080", "9090", "9464"}

// CheckDockerfile lints deploy/Dockerfile as `docker build --check` would and
// checks what the image must be: non-root, pinned, built with go.mod's Go.
func CheckDockerfile(cfg Config) []error {
	path := filepath.Join(cfg.Deploy, "Dockerfile")
	p := &problems{prefix: rel(cfg, path)}
	dt, err := os.ReadFile(path)
	if err != nil {
		p.err(err)
		return p.list
	}

	// BuildKit's dockerfile2llb.DockerfileLint is the lint subrequest behind
	// `docker build --check`: parser, instruction parser, every rule. Base
	// images are "resolved" by a stub, since no registry is reachable; it
	// records what BuildKit asked for (ARGs expanded).
	resolver := &stubResolver{}
	src := llb.NewSourceMap(nil, "Dockerfile", "Dockerfile", dt)
	src.Definition = &llb.Definition{} // what the lint result's source refers to
	res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, dockerfile2llb.ConvertOpt{
		SourceMap:    src,
		MetaResolver: resolver,
	})
	if err != nil {
		p.add("lint: %v", err)
		return p.list
	}
	if res.Error != nil {
		// Also what lint findings become under `# check=error=true`; the
		// checks below still run.
		p.add("BuildKit rejects it: %s", res.Error.Message)
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		p.add("line %d: lint %s: %s", line, w.RuleName, w.Detail)
	}

	ast, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		p.err(err)
		return p.list
	}
	stages, metaArgs, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		p.err(err)
		return p.list
	}
	if len(stages) < 2 {
		p.add("want a multi-stage build (builder and a minimal final stage), got %d stage(s)", len(stages))
	}

	// Base images as BuildKit resolved them: a tag that is not "latest", or a
	// digest. Stage names (FROM build) never reach the resolver.
	goVersion, err := goDirective(filepath.Join(cfg.Root, "go.mod"))
	p.err(err)
	refs := resolver.refs()
	if len(refs) == 0 {
		p.add("no base image was resolved")
	}
	for _, ref := range refs {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			p.add("base image %q: %v", ref, err)
			continue
		}
		_, digested := named.(reference.Digested)
		tagged, hasTag := named.(reference.Tagged)
		switch {
		case digested:
		case !hasTag:
			p.add("base image %q is not pinned: give it a tag or a digest", ref)
		case tagged.Tag() == "latest":
			p.add("base image %q uses the moving tag latest (no tag means latest)", ref)
		}
		if reference.Path(named) == "library/golang" && hasTag && goVersion != "" {
			// golang:1.26.8, golang:1.26.8-trixie, ...: the builder must have
			// the exact toolchain go.mod asks for (GOTOOLCHAIN=local in the
			// image: an older one fails, a newer one builds something else
			// than CI tested).
			if v, _, _ := strings.Cut(tagged.Tag(), "-"); v != goVersion {
				p.add("builder %q: Go %s, but go.mod says go %s", ref, v, goVersion)
			}
		}
	}

	final := stages[len(stages)-1]
	var user *instructions.UserCommand
	var entrypoint *instructions.EntrypointCommand
	var exposed []string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c
		case *instructions.EntrypointCommand:
			entrypoint = c
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		}
	}
	switch {
	case user == nil:
		p.add("final stage %q sets no USER: the image would rely on its base for a non-root user", final.BaseName)
	default:
		uid, _, _ := strings.Cut(user.User, ":")
		n, err := strconv.Atoi(uid)
		switch {
		case err != nil:
			// Kubernetes' runAsNonRoot can only verify a numeric UID.
			p.add("final stage USER %q: want a numeric UID (Kubernetes runAsNonRoot cannot verify a name)", user.User)
		case n == 0:
			p.add("final stage runs as root (USER %s)", user.User)
		}
	}
	if entrypoint == nil {
		p.add("final stage has no ENTRYPOINT")
	} else if entrypoint.PrependShell {
		p.add("ENTRYPOINT must be exec form (JSON array): the final image has no shell and signals must reach the binary")
	}
	for _, port := range wantExposed {
		if !slices.ContainsFunc(exposed, func(e string) bool { return e == port || strings.HasPrefix(e, port+"/") }) {
			p.add("final stage does not EXPOSE %s", port)
		}
	}
	// The ARG pinning the builder must be the go.mod version as well, so a
	// `--build-arg`-less build matches CI.
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Key == "GO_VERSION" && goVersion != "" && (kv.Value == nil || *kv.Value != goVersion) {
				p.add("ARG GO_VERSION=%v, but go.mod says go %s", deref(kv.Value), goVersion)
			}
		}
	}
	return p.list
}

func deref(s *string) string {
	if s == nil {
		return "(unset)"
	}
	return *s
}

var goLineRE = regexp.MustCompile(`(?m)^go\s+(\S+)\s*$`)

func goDirective(gomod string) (string, error) {
	dt, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	m := goLineRE.FindSubmatch(dt)
	if m == nil {
		return "", fmt.Errorf("%s: no go directive", gomod)
	}
	return string(m[1]), nil
}

// stubResolver answers BuildKit's image config lookups with an empty Linux
// image of the requested platform (one layer, so it is not taken for
// scratch), recording each reference.
type stubResolver struct {
	mu   sync.Mutex
	seen []string
}

func (r *stubResolver) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	r.mu.Lock()
	r.seen = append(r.seen, ref)
	r.mu.Unlock()
	plat := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		plat = *opt.ImageOpt.Platform
	}
	img := map[string]any{
		"os":           plat.OS,
		"architecture": plat.Architecture,
		"variant":      plat.Variant,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digest.FromString(ref).String()}},
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	}
	dt, err := json.Marshal(img)
	return ref, "", dt, err
}

func (r *stubResolver) refs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.seen)
	slices.Sort(out)
	return slices.Compact(out)
}

// CheckDockerignore checks the build context that deploy/Dockerfile.dockerignore
// leaves: every file the server's build reads (go list: Go files and
// embedded files of the module's packages, go.mod, go.sum) must be in it,
// and local state (.git, data/) must not.
func CheckDockerignore(cfg Config) []error {
	path := filepath.Join(cfg.Deploy, "Dockerfile.dockerignore")
	p := &problems{prefix: rel(cfg, path)}
	f, err := os.Open(path)
	if err != nil {
		p.err(err)
		return p.list
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		p.err(err)
		return p.list
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		p.err(err)
		return p.list
	}
	files, err := buildInputs(cfg.Root)
	if err != nil {
		p.err(err)
		return p.list
	}
	for _, f := range files {
		excluded, err := pm.MatchesOrParentMatches(f)
		if err != nil {
			p.err(err)
			continue
		}
		if excluded {
			p.add("excludes %s, which `go build ./server` reads", f)
		}
	}
	for _, f := range []string{".git/config", "data/store.db", ".protodeps/x.proto"} {
		if excluded, _ := pm.MatchesOrParentMatches(f); !excluded {
			p.add("sends %s to the builder: local state does not belong in the build context", filepath.Dir(f))
		}
	}
	return p.list
}

// buildInputs lists, relative to root, the files of the main module that
// building ./server reads.
func buildInputs(root string) ([]string, error) {
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=Dir,Module,GoFiles,CgoFiles,EmbedFiles,SFiles,HFiles", "./server")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list ./server: %v: %s", err, stderr.String())
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var pkg struct {
			Dir                                           string
			Module                                        *struct{ Main bool }
			GoFiles, CgoFiles, EmbedFiles, SFiles, HFiles []string
		}
		if err := dec.Decode(&pkg); err != nil {
			return nil, err
		}
		if pkg.Module == nil || !pkg.Module.Main {
			continue
		}
		dir, err := filepath.Rel(root, pkg.Dir)
		if err != nil {
			return nil, err
		}
		for _, list := range [][]string{pkg.GoFiles, pkg.CgoFiles, pkg.EmbedFiles, pkg.SFiles, pkg.HFiles} {
			for _, f := range list {
				files = append(files, filepath.ToSlash(filepath.Join(dir, f)))
			}
		}
	}
	return files, nil
}
