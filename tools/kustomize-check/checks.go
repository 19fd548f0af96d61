package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The labels every object and pod template carries (Kubernetes' recommended labels).
var standardLabels = []string{
	"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component", "app.kubernetes.io/part-of",
}

// The scripts ConfigMap and the variable that tells the runtime where it is mounted.
const (
	scriptsConfigMap = "forgecast-scripts"
	scriptsVariable  = "FORGECAST_SCRIPTS"
)

// clientSideApplyLimit is where `kubectl apply` (client side) stops: it keeps a copy of the object in an annotation,
// and all of an object's annotations together hold at most 256 KiB. Past it, `kubectl apply --server-side` works.
const clientSideApplyLimit = 200 * 1024

// checkOverlay returns every problem of one rendered overlay, one line each.
func checkOverlay(o *Overlay, r *Repo) []string {
	var p problems
	checkLabels(o, &p)
	checkImages(o, r, &p)
	checkServices(o, &p)
	checkSelectors(o, &p)
	checkVolumes(o, &p)
	checkSecurity(o, &p)
	checkCommands(o, r, &p)
	checkScripts(o, r, &p)
	checkPolicies(o, &p)
	checkReplicaSet(o, &p)
	return p
}

type problems []string

func (p *problems) add(where fmt.Stringer, format string, args ...any) {
	*p = append(*p, where.String()+": "+fmt.Sprintf(format, args...))
}

type named string

func (n named) String() string { return string(n) }

func objectName(o Object) named { return named(o.Kind + "/" + o.Metadata.Name) }

func checkLabels(o *Overlay, p *problems) {
	for _, object := range o.Objects {
		if missing := missingLabels(object.Metadata.Labels); len(missing) > 0 {
			p.add(objectName(object), "no label %s", strings.Join(missing, ", "))
		}
	}
	for _, w := range o.Workloads {
		if missing := missingLabels(w.Pod.Metadata.Labels); len(missing) > 0 {
			p.add(w, "the pod template has no label %s", strings.Join(missing, ", "))
		}
		for _, claim := range w.Claims {
			if missing := missingLabels(claim.Labels); len(missing) > 0 {
				p.add(w, "the claim template %s has no label %s (kustomize's labels do not reach it)", claim.Name,
					strings.Join(missing, ", "))
			}
		}
		if w.Selector != nil && !w.Selector.Matches(w.Pod.Metadata.Labels) {
			p.add(w, "the selector does not select the pod template's labels")
		}
	}
}

func missingLabels(labels map[string]string) []string {
	var missing []string
	for _, l := range standardLabels {
		if labels[l] == "" {
			missing = append(missing, l)
		}
	}
	return missing
}

// checkImages: an image compose builds (never pulled: minikube's Docker has it), or one compose runs, with a tag.
func checkImages(o *Overlay, r *Repo, p *problems) {
	run := map[string]bool{}
	for _, service := range r.compose.Services {
		if service.Build == nil {
			run[service.Image] = true
		}
	}
	for _, w := range o.Workloads {
		for _, c := range containers(w) {
			where := named(fmt.Sprintf("%s container %s", w, c.Name))
			if _, local := r.images[c.Image]; local {
				if c.ImagePullPolicy != "IfNotPresent" && c.ImagePullPolicy != "Never" {
					p.add(where, "%s is built locally (%s): imagePullPolicy IfNotPresent, or Kubernetes pulls it from "+
						"Docker Hub", c.Image, relative(r, r.images[c.Image].path))
				}
				continue
			}
			name, tag, tagged := strings.Cut(c.Image, ":")
			switch {
			case !tagged || tag == "latest" || strings.Contains(tag, "/"):
				p.add(where, "%s has no pinned tag", c.Image)
			case !run[c.Image]:
				p.add(where, "%s is neither built by %s nor one of the official images it runs (%s)", c.Image,
					composeFile, strings.Join(sortedKeys(run), ", "))
			default:
				_ = name
			}
		}
	}
}

func checkServices(o *Overlay, p *problems) {
	for _, object := range o.Objects {
		if object.Kind != "Service" {
			continue
		}
		var spec serviceSpec
		decode(object, &spec)
		selected := o.selected(&LabelSelector{MatchLabels: spec.Selector})
		if len(spec.Selector) == 0 || len(selected) == 0 {
			p.add(objectName(object), "selects no pods of the overlay (selector %v)", spec.Selector)
			continue
		}
		for _, port := range spec.Ports {
			target := IntOrString{Int: port.Port}
			if port.TargetPort != nil {
				target = *port.TargetPort
			}
			for _, w := range selected {
				if !exposes(w, target) {
					p.add(objectName(object), "port %s: targetPort %s is not a port of %s's containers", port.Name,
						target.text(), w)
				}
			}
		}
	}
}

func exposes(w *Workload, port IntOrString) bool {
	for _, c := range w.Pod.Spec.Containers {
		for _, exposed := range c.Ports {
			if (port.String != "" && exposed.Name == port.String) || (port.String == "" && exposed.ContainerPort == port.Int) {
				return true
			}
		}
	}
	return false
}

// checkSelectors: each PodDisruptionBudget and NetworkPolicy selects pods the overlay has.
func checkSelectors(o *Overlay, p *problems) {
	for _, object := range o.Objects {
		var selector LabelSelector
		switch object.Kind {
		case "PodDisruptionBudget":
			var spec pdbSpec
			decode(object, &spec)
			selector = spec.Selector
		case "NetworkPolicy":
			var spec policySpec
			decode(object, &spec)
			selector = spec.PodSelector
			for _, rule := range spec.Ingress {
				for _, from := range rule.From {
					if from.PodSelector == nil {
						continue
					}
					for _, e := range from.PodSelector.MatchExpressions {
						for _, value := range e.Values {
							one := LabelSelector{MatchLabels: map[string]string{e.Key: value}}
							if e.Operator == "In" && len(o.selected(&one)) == 0 {
								p.add(objectName(object), "lets in %s=%s, which no pod of the overlay has", e.Key, value)
							}
						}
					}
				}
			}
		default:
			continue
		}
		if len(o.selected(&selector)) == 0 {
			p.add(objectName(object), "selects no pods of the overlay")
		}
	}
}

func checkVolumes(o *Overlay, p *problems) {
	mountedKeys := map[string]map[string]bool{}
	for _, w := range o.Workloads {
		volumes := map[string]Volume{}
		for _, v := range w.Pod.Spec.Volumes {
			volumes[v.Name] = v
			switch {
			case v.ConfigMap != nil:
				data, exists := o.ConfigMaps[v.ConfigMap.Name]
				if !exists {
					if v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional {
						p.add(w, "volume %s: no ConfigMap %s in the overlay", v.Name, v.ConfigMap.Name)
					}
					continue
				}
				if mountedKeys[v.ConfigMap.Name] == nil {
					mountedKeys[v.ConfigMap.Name] = map[string]bool{}
				}
				for _, item := range v.ConfigMap.Items {
					if _, ok := data[item.Key]; !ok {
						p.add(w, "volume %s: ConfigMap %s has no key %s", v.Name, v.ConfigMap.Name, item.Key)
					}
					mountedKeys[v.ConfigMap.Name][item.Key] = true
				}
				if len(v.ConfigMap.Items) == 0 {
					for key := range data {
						mountedKeys[v.ConfigMap.Name][key] = true
					}
				}
			case v.Secret != nil:
				if !o.Secrets[v.Secret.SecretName] && (v.Secret.Optional == nil || !*v.Secret.Optional) {
					p.add(w, "volume %s: Secret %s is not in the manifests and not optional", v.Name, v.Secret.SecretName)
				}
			case v.PersistentVolumeClaim != nil:
				if !o.Claims[v.PersistentVolumeClaim.ClaimName] {
					p.add(w, "volume %s: no PersistentVolumeClaim %s in the overlay", v.Name, v.PersistentVolumeClaim.ClaimName)
				}
			}
		}
		for _, claim := range w.Claims {
			volumes[claim.Name] = Volume{Name: claim.Name}
		}
		for _, c := range containers(w) {
			for _, m := range c.VolumeMounts {
				if _, ok := volumes[m.Name]; !ok {
					p.add(w, "container %s mounts %s, which the pod does not have", c.Name, m.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
					if _, ok := o.ConfigMaps[ref.Name][ref.Key]; !ok && (ref.Optional == nil || !*ref.Optional) {
						p.add(w, "container %s: %s comes from ConfigMap %s key %s, which the overlay lacks", c.Name, e.Name,
							ref.Name, ref.Key)
					}
				}
				if ref := e.ValueFrom.SecretKeyRef; ref != nil && !o.Secrets[ref.Name] && (ref.Optional == nil || !*ref.Optional) {
					p.add(w, "container %s: %s comes from Secret %s, which is not in the manifests: make it optional "+
						"so that they apply without one", c.Name, e.Name, ref.Name)
				}
			}
		}
	}
	for name, data := range o.ConfigMaps {
		for key := range data {
			if mountedKeys[name] != nil && !mountedKeys[name][key] {
				p.add(named("ConfigMap/"+name), "key %s is mounted by no pod (the volumes' items leave it out)", key)
			}
		}
	}
}

func checkSecurity(o *Overlay, p *problems) {
	for _, w := range o.Workloads {
		spec := w.Pod.Spec
		if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
			p.add(w, "the pod does not set runAsNonRoot: true")
		} else if profile := spec.SecurityContext.SeccompProfile; profile == nil || profile.Type != "RuntimeDefault" {
			p.add(w, "the pod does not set seccompProfile: {type: RuntimeDefault}")
		}
		// Kubernetes would otherwise set variables per Service, such as SPARK_MASTER_PORT=tcp://..., which Spark
		// reads as a port number.
		if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
			p.add(w, "the pod does not set enableServiceLinks: false")
		}
		for _, c := range containers(w) {
			s := c.SecurityContext
			switch {
			case s == nil || s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem:
				p.add(w, "container %s: no readOnlyRootFilesystem: true", c.Name)
			case s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation:
				p.add(w, "container %s: no allowPrivilegeEscalation: false", c.Name)
			case s.Capabilities == nil || !contains(s.Capabilities.Drop, "ALL"):
				p.add(w, "container %s: capabilities do not drop ALL", c.Name)
			}
			for _, resource := range []string{"cpu", "memory"} {
				if c.Resources.Requests[resource] == "" || c.Resources.Limits[resource] == "" {
					p.add(w, "container %s: no %s request and limit", c.Name, resource)
				}
			}
		}
	}
}

// checkCommands: what runs the forgecast binary uses its commands, flags and variables; `up` has its probes on the
// port it listens on; a Python job's flags are its own.
func checkCommands(o *Overlay, r *Repo, p *problems) {
	flagPattern := regexp.MustCompile(`^--[a-z0-9-]+`)
	for _, w := range o.Workloads {
		for _, c := range containers(w) {
			where := named(fmt.Sprintf("%s container %s", w, c.Name))
			argv := r.argv(&c)
			if job := r.pythonJob(&c); job != "" {
				source, err := os.ReadFile(job)
				if err != nil {
					p.add(where, "runs %s, which the repository does not have (%s)", argv[1], relative(r, job))
					continue
				}
				for _, arg := range argv[2:] {
					if flag := flagPattern.FindString(arg); flag != "" && !strings.Contains(string(source), `"`+flag+`"`) {
						p.add(where, "%s has no flag %s", relative(r, job), flag)
					}
				}
				continue
			}
			if len(argv) == 0 || filepath.Base(argv[0]) != "forgecast" {
				continue
			}
			if len(argv) < 2 {
				p.add(where, "runs forgecast without a command")
				continue
			}
			command := argv[1]
			help, err := r.commandHelp(command)
			if err != nil {
				p.add(where, "%s", err)
				continue
			}
			for _, arg := range argv[2:] {
				if flag := flagPattern.FindString(arg); flag != "" && !help.flags[flag] {
					p.add(where, "`forgecast %s` has no flag %s", command, flag)
				}
			}
			for _, e := range c.Env {
				if !help.env[e.Name] {
					p.add(where, "`forgecast %s` does not read %s (neither in its --help nor read by name)", command, e.Name)
				}
			}
			if command == "up" {
				checkUpProbes(where, &c, p)
			}
		}
	}
}

// checkUpProbes: readiness on /readyz, liveness (and startup) on /healthz, all on the port FORGECAST_LISTEN names.
func checkUpProbes(where named, c *Container, p *problems) {
	listen := c.env()["FORGECAST_LISTEN"]
	_, port, ok := strings.Cut(listen, ":")
	if !ok || strings.HasPrefix(listen, "127.") || strings.HasPrefix(listen, "localhost") {
		p.add(where, "FORGECAST_LISTEN is %q: the probes and the Service need 0.0.0.0:PORT", listen)
		return
	}
	portNumber, _ := strconv.Atoi(port)
	probes := []struct {
		name  string
		probe *Probe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"},
		{"startupProbe", c.StartupProbe, "/healthz"}}
	for _, want := range probes {
		if want.probe == nil {
			if want.name != "startupProbe" {
				p.add(where, "no %s", want.name)
			}
			continue
		}
		get := want.probe.HTTPGet
		if get == nil || get.Path != want.path {
			p.add(where, "%s should GET %s", want.name, want.path)
			continue
		}
		if containerPort(c, get.Port) != portNumber {
			p.add(where, "%s on port %s, but the runtime listens on %s", want.name, get.Port.text(), listen)
		}
	}
}

func containerPort(c *Container, port IntOrString) int {
	if port.String == "" {
		return port.Int
	}
	for _, exposed := range c.Ports {
		if exposed.Name == port.String {
			return exposed.ContainerPort
		}
	}
	return -1
}

// checkScripts: the scripts ConfigMap equals scripts/, and every pod that mounts it maps each key back to its path,
// at the directory FORGECAST_SCRIPTS names.
func checkScripts(o *Overlay, r *Repo, p *problems) {
	data, ok := o.ConfigMaps[scriptsConfigMap]
	where := named("ConfigMap/" + scriptsConfigMap)
	if !ok {
		p.add(where, "missing: the pipeline pods mount it")
		return
	}
	files := map[string]string{} // key -> path under scripts/
	dir := filepath.Join(r.root, "scripts")
	size := 0
	err := filepath.WalkDir(dir, func(path string, entry os.DirEntry, err error) error {
		if err != nil || entry.IsDir() {
			return err
		}
		relativePath, _ := filepath.Rel(dir, path)
		key := strings.ReplaceAll(filepath.ToSlash(relativePath), "/", ".")
		files[key] = filepath.ToSlash(relativePath)
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		size += len(content)
		switch got, has := data[key]; {
		case !has:
			p.add(where, "no key %s for scripts/%s: add it to k8s/base/kustomization.yaml and pipeline-pod.yaml", key, relativePath)
		case got != string(content):
			p.add(where, "key %s differs from scripts/%s", key, relativePath)
		}
		return nil
	})
	if err != nil {
		p.add(where, "cannot read scripts/: %s", err)
	}
	for key := range data {
		if _, ok := files[key]; !ok {
			p.add(where, "key %s is no file of scripts/ (as %s)", key, strings.ReplaceAll(key, ".", "/"))
		}
	}
	if size > clientSideApplyLimit {
		p.add(where, "the scripts hold %d KiB: past %d KiB, `kubectl apply` cannot keep its copy of the ConfigMap; "+
			"switch k8s/README.md's commands to `kubectl apply --server-side`", size/1024, clientSideApplyLimit/1024)
	}
	mounted := false
	for _, w := range o.Workloads {
		for _, v := range w.Pod.Spec.Volumes {
			if v.ConfigMap == nil || v.ConfigMap.Name != scriptsConfigMap {
				continue
			}
			mounted = true
			items := map[string]string{}
			for _, item := range v.ConfigMap.Items {
				items[item.Key] = item.Path
			}
			for key, path := range files {
				if items[key] != path {
					p.add(w, "volume %s does not put key %s back at %s", v.Name, key, path)
				}
			}
			for _, c := range containers(w) {
				for _, m := range c.VolumeMounts {
					if m.Name == v.Name && c.env()[scriptsVariable] != m.MountPath {
						p.add(w, "container %s mounts the scripts at %s, but %s is %q", c.Name, m.MountPath,
							scriptsVariable, c.env()[scriptsVariable])
					}
				}
			}
		}
	}
	if !mounted {
		p.add(where, "no pod mounts it")
	}
}

// checkPolicies: each pod whose containers name a Service that a NetworkPolicy guards (in a variable or an argument,
// as HOST:PORT or in a URI) is let through by that policy.
func checkPolicies(o *Overlay, p *problems) {
	for _, object := range o.Objects {
		if object.Kind != "NetworkPolicy" {
			continue
		}
		var policy policySpec
		decode(object, &policy)
		for _, service := range o.Objects {
			if service.Kind != "Service" {
				continue
			}
			var spec serviceSpec
			decode(service, &spec)
			guarded := false
			for _, w := range o.selected(&LabelSelector{MatchLabels: spec.Selector}) {
				guarded = guarded || policy.PodSelector.Matches(w.Pod.Metadata.Labels)
			}
			if !guarded {
				continue
			}
			host := regexp.MustCompile(`(^|[/@,])` + regexp.QuoteMeta(service.Metadata.Name) + `(-\d+\.` +
				regexp.QuoteMeta(service.Metadata.Name) + `)?:\d+`)
			for _, w := range o.Workloads {
				if policy.PodSelector.Matches(w.Pod.Metadata.Labels) || !namesHost(w, host) {
					continue
				}
				if !policy.admits(w.Pod.Metadata.Labels) {
					p.add(objectName(object), "%s connects to %s, but the policy does not let it in", w, service.Metadata.Name)
				}
			}
		}
	}
}

func namesHost(w *Workload, host *regexp.Regexp) bool {
	for _, c := range containers(w) {
		for _, value := range append(append([]string{}, c.Args...), c.Command...) {
			if host.MatchString(value) {
				return true
			}
		}
		for _, e := range c.Env {
			if host.MatchString(e.Value) {
				return true
			}
		}
	}
	return false
}

func (policy *policySpec) admits(labels map[string]string) bool {
	for _, rule := range policy.Ingress {
		if len(rule.From) == 0 {
			return true
		}
		for _, from := range rule.From {
			if from.PodSelector != nil && from.PodSelector.Matches(labels) {
				return true
			}
		}
	}
	return false
}

// checkReplicaSet: every MongoDB URI names the replica set that the StatefulSet behind its host runs (`--replSet`),
// and a Job that initiates a set (REPLICA_SET, MEMBERS) agrees with that StatefulSet on the name and the members.
func checkReplicaSet(o *Overlay, p *problems) {
	uri := regexp.MustCompile(`mongodb://([a-z0-9-]+)(?:-\d+\.[a-z0-9-]+)?:\d+/?\S*?[?&]replicaSet=([A-Za-z0-9_-]+)`)
	sets := map[string]*Workload{} // set name -> its StatefulSet
	served := map[string]string{}  // Service name -> the set its StatefulSet runs
	for _, object := range o.Objects {
		if object.Kind != "Service" {
			continue
		}
		var spec serviceSpec
		decode(object, &spec)
		for _, w := range o.selected(&LabelSelector{MatchLabels: spec.Selector}) {
			for _, c := range w.Pod.Spec.Containers {
				for i, arg := range c.Args {
					if w.Kind == "StatefulSet" && arg == "--replSet" && i+1 < len(c.Args) {
						sets[c.Args[i+1]] = w
						served[object.Metadata.Name] = c.Args[i+1]
					}
				}
			}
		}
	}
	for _, w := range o.Workloads {
		for _, c := range containers(w) {
			values := append(append([]string{}, c.Args...), c.Command...)
			for _, e := range c.Env {
				values = append(values, e.Value)
			}
			for _, value := range values {
				for _, m := range uri.FindAllStringSubmatch(value, -1) {
					if served[m[1]] != m[2] {
						p.add(w, "container %s names the replica set %s on %s, whose StatefulSet runs %q", c.Name, m[2],
							m[1], served[m[1]])
					}
				}
			}
			env := c.env()
			if set, members := env["REPLICA_SET"], env["MEMBERS"]; set != "" && members != "" {
				statefulSet := sets[set]
				switch {
				case statefulSet == nil:
					p.add(w, "initiates the replica set %s, which no StatefulSet runs", set)
				case strconv.Itoa(deref(statefulSet.Replicas)) != members:
					p.add(w, "initiates %s with MEMBERS=%s, but %s has %d replicas", set, members, statefulSet,
						deref(statefulSet.Replicas))
				case env["SERVICE"] != statefulSet.Name:
					p.add(w, "names the members after %q, but the StatefulSet is %s", env["SERVICE"], statefulSet.Name)
				}
			}
		}
	}
}

func deref(n *int) int {
	if n == nil {
		return 1
	}
	return *n
}

func containers(w *Workload) []Container {
	return append(append([]Container{}, w.Pod.Spec.InitContainers...), w.Pod.Spec.Containers...)
}

func relative(r *Repo, path string) string {
	if rel, err := filepath.Rel(r.root, path); err == nil {
		return rel
	}
	return path
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
