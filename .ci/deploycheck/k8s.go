package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The configuration every pod reads, and where its region settings live.
const configMapPrefix = "platform-config"

// scheme registers the API groups the manifests may use, at their GA
// versions. Any other kind or version (a typo, a removed beta, a CRD) fails
// to decode; add its group here if it is meant to be deployed. (Registering
// only these, not client-go's whole scheme, keeps the build minutes shorter.)
var scheme = runtime.NewScheme()

func init() {
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		policyv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
}

// strict decodes an object into its Go type, failing on unknown or
// duplicate fields and on kinds the scheme does not know.
var strict = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

// objects is one kustomize build, decoded.
type objects struct {
	name        string
	deployments []*appsv1.Deployment
	jobs        []*batchv1.Job
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	configMaps  []*corev1.ConfigMap
	namespaces  []*corev1.Namespace
	secretRefs  map[string][]string // secret -> keys
	namespaced  map[string]string   // kind/name -> namespace
}

// CheckKubernetes builds deploy/k8s/base and each deploy/k8s/overlays/*
// with kustomize, decodes every object strictly and checks what a
// production rollout relies on.
func CheckKubernetes(cfg Config) []error {
	k8s := filepath.Join(cfg.Deploy, "k8s")
	var all []error
	base, errs := buildKustomization(cfg, filepath.Join(k8s, "base"))
	all = append(all, errs...)
	if base != nil {
		all = append(all, checkObjects(cfg, base)...)
	}
	overlayDirs, _ := filepath.Glob(filepath.Join(k8s, "overlays", "*"))
	var overlays []string
	for _, dir := range overlayDirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		overlays = append(overlays, filepath.Base(dir))
		o, errs := buildKustomization(cfg, dir)
		all = append(all, errs...)
		if o == nil {
			continue
		}
		all = append(all, checkObjects(cfg, o)...)
		all = append(all, checkRegion(o, filepath.Base(dir))...)
	}
	// Every database region has an overlay and no overlay serves a region
	// the database does not have.
	if base != nil {
		p := &problems{prefix: "deploy/k8s/overlays"}
		regions := splitList(configValue(base, "DB_REGIONS"))
		if len(regions) == 0 {
			p.add("base %s has no DB_REGIONS", configMapPrefix)
		}
		for _, r := range regions {
			if !slices.Contains(overlays, r) {
				p.add("database region %s has no overlay", r)
			}
		}
		for _, o := range overlays {
			if !slices.Contains(regions, o) {
				p.add("overlay %s is not one of DB_REGIONS %v", o, regions)
			}
		}
		all = append(all, p.list...)
	}
	return all
}

func buildKustomization(cfg Config, dir string) (*objects, []error) {
	p := &problems{prefix: rel(cfg, dir)}
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified // as `kubectl kustomize`: the file's sortOptions decide
	k := krusty.MakeKustomizer(opts)
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		p.add("kustomize build: %v", err)
		return nil, p.list
	}
	o := &objects{name: rel(cfg, dir), secretRefs: map[string][]string{}, namespaced: map[string]string{}}
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			p.err(err)
			continue
		}
		id := r.CurId().String()
		obj, gvk, err := strict.Decode(y, nil, nil)
		if err != nil {
			p.add("%s: %v", id, err)
			continue
		}
		if m, ok := obj.(metav1.Object); ok && m.GetNamespace() != "" {
			o.namespaced[gvk.Kind+"/"+m.GetName()] = m.GetNamespace()
		}
		switch t := obj.(type) {
		case *appsv1.Deployment:
			o.deployments = append(o.deployments, t)
		case *batchv1.Job:
			o.jobs = append(o.jobs, t)
		case *corev1.Service:
			o.services = append(o.services, t)
		case *policyv1.PodDisruptionBudget:
			o.pdbs = append(o.pdbs, t)
		case *autoscalingv2.HorizontalPodAutoscaler:
			o.hpas = append(o.hpas, t)
		case *corev1.ConfigMap:
			o.configMaps = append(o.configMaps, t)
		case *corev1.Namespace:
			o.namespaces = append(o.namespaces, t)
		case *corev1.ServiceAccount:
		default:
			p.add("%s: unexpected kind %T (extend deploycheck if it is meant to be here)", id, obj)
		}
	}
	if len(p.list) > 0 {
		return nil, p.list
	}
	return o, nil
}

func checkObjects(cfg Config, o *objects) []error {
	p := &problems{prefix: o.name}
	if len(o.deployments) == 0 {
		p.add("no Deployment")
	}
	// Namespaces: everything in one, and that one created here.
	var ns []string
	for _, n := range o.namespaced {
		if !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	if len(ns) != 1 {
		p.add("objects spread over namespaces %v; want one", ns)
	} else if !slices.ContainsFunc(o.namespaces, func(n *corev1.Namespace) bool { return n.Name == ns[0] }) {
		p.add("namespace %s is used but not created", ns[0])
	}

	subcommands := map[string]bool{}
	for _, d := range o.deployments {
		id := "Deployment/" + d.Name
		tmpl := labels.Set(d.Spec.Template.Labels)
		if d.Spec.Selector == nil || !selects(d.Spec.Selector, tmpl) {
			p.add("%s: selector does not match its pod template labels", id)
		}
		if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType && d.Spec.Strategy.Type != "" {
			p.add("%s: strategy %s; want RollingUpdate", id, d.Spec.Strategy.Type)
		} else if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxSurge == nil {
			p.add("%s: set rollingUpdate maxUnavailable and maxSurge explicitly", id)
		}
		sub := podChecks(p, o, id, &d.Spec.Template.Spec, false)
		subcommands[sub] = true

		// Probes.
		for _, c := range d.Spec.Template.Spec.Containers {
			cid := id + " container " + c.Name
			if c.ReadinessProbe == nil {
				p.add("%s: no readinessProbe", cid)
			}
			if c.LivenessProbe == nil {
				p.add("%s: no livenessProbe", cid)
			}
			for kind, pr := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
				if pr == nil {
					continue
				}
				if err := probePort(pr, c.Ports); err != nil {
					p.add("%s: %sProbe: %v", cid, kind, err)
				}
			}
			if sub == "serve" && (c.ReadinessProbe == nil || c.ReadinessProbe.GRPC == nil) {
				p.add("%s: the server's readinessProbe must use the gRPC health service (grpc:)", cid)
			}
			if sub == "gateway" && (c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz") {
				p.add("%s: the gateway's readinessProbe must be GET /readyz (ready only while its servers are)", cid)
			}
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
				grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
				if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
					grace = *g
				}
				// The server drains for up to 10s after preStop.
				if grace < c.Lifecycle.PreStop.Sleep.Seconds+10 {
					p.add("%s: terminationGracePeriodSeconds %d leaves no time to drain after a %ds preStop sleep", cid, grace, c.Lifecycle.PreStop.Sleep.Seconds)
				}
			}
		}

		// Spread across zones, over this Deployment's own pods.
		zoneSpread := false
		for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
			if tsc.TopologyKey == corev1.LabelTopologyZone {
				zoneSpread = true
				if tsc.LabelSelector == nil || !selects(tsc.LabelSelector, tmpl) {
					p.add("%s: zone topologySpreadConstraint selects other pods than its own", id)
				}
			}
		}
		if !zoneSpread {
			p.add("%s: no topologySpreadConstraint on %s", id, corev1.LabelTopologyZone)
		}

		// Exactly one PodDisruptionBudget covers its pods.
		var pdbs []string
		for _, b := range o.pdbs {
			if b.Spec.Selector != nil && selects(b.Spec.Selector, tmpl) {
				pdbs = append(pdbs, b.Name)
			}
		}
		if len(pdbs) != 1 {
			p.add("%s: %d PodDisruptionBudgets select its pods %v; want exactly 1", id, len(pdbs), pdbs)
		}

		// Exactly one HorizontalPodAutoscaler, on CPU, owns its replica count.
		var hpas []*autoscalingv2.HorizontalPodAutoscaler
		for _, h := range o.hpas {
			ref := h.Spec.ScaleTargetRef
			if ref.Kind == "Deployment" && ref.Name == d.Name && ref.APIVersion == "apps/v1" {
				hpas = append(hpas, h)
			}
		}
		switch len(hpas) {
		case 1:
			h := hpas[0]
			if d.Spec.Replicas != nil {
				p.add("%s: sets replicas, which every apply would reset under HorizontalPodAutoscaler/%s", id, h.Name)
			}
			cpu := slices.ContainsFunc(h.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
				return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU
			})
			if !cpu {
				p.add("HorizontalPodAutoscaler/%s: no CPU resource metric", h.Name)
			}
			if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
				p.add("HorizontalPodAutoscaler/%s: minReplicas below 2 leaves one pod, which its PodDisruptionBudget cannot protect", h.Name)
			} else if *h.Spec.MinReplicas > h.Spec.MaxReplicas {
				p.add("HorizontalPodAutoscaler/%s: minReplicas %d > maxReplicas %d", h.Name, *h.Spec.MinReplicas, h.Spec.MaxReplicas)
			}
		default:
			p.add("%s: %d HorizontalPodAutoscalers target it; want exactly 1", id, len(hpas))
		}
	}
	for _, b := range o.pdbs {
		if !slices.ContainsFunc(o.deployments, func(d *appsv1.Deployment) bool {
			return b.Spec.Selector != nil && selects(b.Spec.Selector, d.Spec.Template.Labels)
		}) {
			p.add("PodDisruptionBudget/%s selects no Deployment's pods", b.Name)
		}
	}
	for _, h := range o.hpas {
		if !slices.ContainsFunc(o.deployments, func(d *appsv1.Deployment) bool { return d.Name == h.Spec.ScaleTargetRef.Name }) {
			p.add("HorizontalPodAutoscaler/%s targets %s/%s, which is not here", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		}
	}
	for _, want := range []string{"serve", "gateway"} {
		if !subcommands[want] {
			p.add("no Deployment runs the %s subcommand", want)
		}
	}

	// The migrate Job.
	migrate := false
	for _, j := range o.jobs {
		id := "Job/" + j.Name
		if podChecks(p, o, id, &j.Spec.Template.Spec, true) == "migrate" {
			migrate = true
		}
		if j.Spec.BackoffLimit == nil {
			p.add("%s: set backoffLimit", id)
		}
		if j.Spec.ActiveDeadlineSeconds == nil {
			p.add("%s: set activeDeadlineSeconds so a stuck migration fails the rollout", id)
		}
	}
	if !migrate {
		p.add("no Job runs the migrate subcommand")
	}

	// Services reach pods, on ports those pods declare.
	for _, s := range o.services {
		id := "Service/" + s.Name
		if len(s.Spec.Selector) == 0 {
			p.add("%s: no selector", id)
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var targets []*appsv1.Deployment
		for _, d := range o.deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				targets = append(targets, d)
			}
		}
		if len(targets) == 0 {
			p.add("%s: selector %v matches no Deployment's pods", id, s.Spec.Selector)
		}
		for _, port := range s.Spec.Ports {
			for _, d := range targets {
				if !podHasPort(&d.Spec.Template.Spec, port.TargetPort, port.Port) {
					p.add("%s: port %s targets %s, which Deployment/%s does not declare", id, port.Name, port.TargetPort.String(), d.Name)
				}
			}
		}
	}

	// Edge defaults: no secret in a ConfigMap, trusted proxies narrowed.
	for _, c := range o.configMaps {
		for _, k := range secretSettings {
			if _, ok := c.Data[k]; ok {
				p.add("ConfigMap/%s holds %s: secrets belong in a Secret", c.Name, k)
			}
		}
		for _, msg := range checkTrustedProxies(c.Data["TRUSTED_PROXIES"]) {
			p.add("ConfigMap/%s: %s", c.Name, msg)
		}
	}

	// Secrets are created out of band (deploy/README.md says how): every
	// key the pods read must be in the runbook's instructions.
	readme, _ := os.ReadFile(filepath.Join(cfg.Deploy, "README.md"))
	for name, keys := range o.secretRefs {
		for _, k := range keys {
			if !strings.Contains(string(readme), "--from-literal="+k+"=") && !strings.Contains(string(readme), "--from-file="+k+"=") {
				p.add("pods read key %s of Secret %s, but deploy/README.md does not say how to create it (--from-literal=%s=...)", k, name, k)
			}
		}
	}
	return p.list
}

// podChecks checks a pod template (security, resources, images, config
// references) and returns the subcommand its first container runs.
func podChecks(p *problems, o *objects, id string, spec *corev1.PodSpec, job bool) string {
	podSC := spec.SecurityContext
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		p.add("%s: automountServiceAccountToken must be false (the pods call no Kubernetes API)", id)
	}
	if job && spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		p.add("%s: restartPolicy %q", id, spec.RestartPolicy)
	}
	sub := ""
	for i, c := range spec.Containers {
		cid := id + " container " + c.Name
		if i == 0 {
			sub = "serve"
			if len(c.Args) > 0 {
				sub = c.Args[0]
			}
		}
		if err := pinned(c.Image); err != nil {
			p.add("%s: %v", cid, err)
		}
		req, lim := c.Resources.Requests, c.Resources.Limits
		if req.Cpu().IsZero() || req.Memory().IsZero() {
			p.add("%s: set resources.requests cpu and memory (the scheduler and the HPA's utilisation need them)", cid)
		}
		if lim.Memory().IsZero() {
			p.add("%s: set resources.limits.memory", cid)
		} else if !req.Memory().IsZero() && lim.Memory().Cmp(*req.Memory()) < 0 {
			p.add("%s: memory limit below its request", cid)
		}
		sc := c.SecurityContext
		nonRoot := (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) ||
			(podSC != nil && podSC.RunAsNonRoot != nil && *podSC.RunAsNonRoot && (sc == nil || sc.RunAsNonRoot == nil))
		if !nonRoot {
			p.add("%s: runAsNonRoot must be true", cid)
		}
		if (sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0) || (podSC != nil && podSC.RunAsUser != nil && *podSC.RunAsUser == 0) {
			p.add("%s: runs as UID 0", cid)
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			p.add("%s: readOnlyRootFilesystem must be true", cid)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			p.add("%s: allowPrivilegeEscalation must be false", cid)
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			p.add("%s: capabilities must drop ALL", cid)
		}
		seccomp := (sc != nil && sc.SeccompProfile != nil) || (podSC != nil && podSC.SeccompProfile != nil)
		if !seccomp {
			p.add("%s: set a seccompProfile (RuntimeDefault)", cid)
		}
		// Configuration references: ConfigMaps must be in the build;
		// Secrets are recorded for the runbook check.
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil && !hasConfigMap(o, ef.ConfigMapRef.Name) && !optional(ef.ConfigMapRef.Optional) {
				p.add("%s: envFrom ConfigMap %s is not in the build", cid, ef.ConfigMapRef.Name)
			}
			if ef.SecretRef != nil {
				if _, ok := o.secretRefs[ef.SecretRef.Name]; !ok {
					o.secretRefs[ef.SecretRef.Name] = nil
				}
			}
		}
		for _, f := range argSecrets(append(append([]string{}, c.Command...), c.Args...)) {
			p.add("%s: %s on the command line is visible in ps; read it from a Secret", cid, f)
		}
		for _, e := range c.Env {
			if slices.Contains(secretSettings, e.Name) && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				p.add("%s: env %s must come from a Secret (secretKeyRef), not be written in the manifest", cid, e.Name)
			}
			if e.Name == "TRUSTED_PROXIES" && e.ValueFrom == nil {
				for _, msg := range checkTrustedProxies(e.Value) {
					p.add("%s: %s", cid, msg)
				}
			}
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil && !hasConfigMap(o, r.Name) && !optional(r.Optional) {
				p.add("%s: env %s: ConfigMap %s is not in the build", cid, e.Name, r.Name)
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil && !slices.Contains(o.secretRefs[r.Name], r.Key) {
				o.secretRefs[r.Name] = append(o.secretRefs[r.Name], r.Key)
			}
		}
	}
	return sub
}

func optional(b *bool) bool { return b != nil && *b }

func hasConfigMap(o *objects, name string) bool {
	return slices.ContainsFunc(o.configMaps, func(c *corev1.ConfigMap) bool { return c.Name == name })
}

func selects(sel *metav1.LabelSelector, set labels.Set) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !s.Empty() && s.Matches(set)
}

// probePort checks that a probe's port is one the container declares.
func probePort(pr *corev1.Probe, ports []corev1.ContainerPort) error {
	var port intstr.IntOrString
	switch {
	case pr.GRPC != nil:
		port = intstr.FromInt32(pr.GRPC.Port)
	case pr.HTTPGet != nil:
		port = pr.HTTPGet.Port
	case pr.TCPSocket != nil:
		port = pr.TCPSocket.Port
	default:
		return fmt.Errorf("no grpc, httpGet or tcpSocket handler")
	}
	for _, cp := range ports {
		if (port.Type == intstr.String && port.StrVal == cp.Name) || (port.Type == intstr.Int && port.IntVal == cp.ContainerPort) {
			return nil
		}
	}
	return fmt.Errorf("port %s is not a declared container port", port.String())
}

func podHasPort(spec *corev1.PodSpec, target intstr.IntOrString, servicePort int32) bool {
	if target.Type == intstr.Int && target.IntVal == 0 {
		target = intstr.FromInt32(servicePort)
	}
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			if (target.Type == intstr.String && target.StrVal == cp.Name) || (target.Type == intstr.Int && target.IntVal == cp.ContainerPort) {
				return true
			}
		}
	}
	return false
}

func configValue(o *objects, key string) string {
	for _, c := range o.configMaps {
		if strings.HasPrefix(c.Name, configMapPrefix) {
			return c.Data[key]
		}
	}
	return ""
}

// checkRegion checks an overlay: its REGION is its directory name and one
// of DB_REGIONS (the server refuses to start otherwise), and its pods are
// pinned to that region's nodes.
func checkRegion(o *objects, region string) []error {
	p := &problems{prefix: o.name}
	got := configValue(o, "REGION")
	regions := splitList(configValue(o, "DB_REGIONS"))
	if got != region {
		p.add("%s REGION=%q, but the overlay is %s", configMapPrefix, got, region)
	}
	if !slices.Contains(regions, got) {
		p.add("REGION=%q is not one of DB_REGIONS %v: the server would refuse to start", got, regions)
	}
	pods := map[string]*corev1.PodSpec{}
	for _, d := range o.deployments {
		pods["Deployment/"+d.Name] = &d.Spec.Template.Spec
	}
	for _, j := range o.jobs {
		pods["Job/"+j.Name] = &j.Spec.Template.Spec
	}
	for id, spec := range pods {
		if vals := nodeRegions(spec); !slices.Equal(vals, []string{region}) {
			p.add("%s: required node affinity %s in %v; want [%s]", id, corev1.LabelTopologyRegion, vals, region)
		}
	}
	return p.list
}

func nodeRegions(spec *corev1.PodSpec) []string {
	a := spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	var out []string
	for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, e := range t.MatchExpressions {
			if e.Key == corev1.LabelTopologyRegion && e.Operator == corev1.NodeSelectorOpIn {
				out = append(out, e.Values...)
			}
		}
	}
	return out
}
