package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// composeServices maps each service of compose/docker-compose.yml to the workload and container that run it in the
// distributed overlay, with what differs on purpose.
var composeServices = []struct {
	service, kind, name, container string
	// Variables whose values differ, and why.
	differentEnv map[string]string
	// Arguments of compose's command that the workload leaves out because Kubernetes does that part.
	droppedArgs []string
	// Compose's mount point -> the manifest's, a folder above it, and why.
	mountedAbove map[string]string
}{
	{service: "kafka", kind: "StatefulSet", name: "kafka", container: "kafka", differentEnv: map[string]string{
		"KAFKA_ADVERTISED_LISTENERS":     "the broker is named after its StatefulSet pod, kafka-0.kafka",
		"KAFKA_CONTROLLER_QUORUM_VOTERS": "the controller is named after its StatefulSet pod, kafka-0.kafka",
	}, mountedAbove: map[string]string{
		// A claim's root can hold lost+found, which Kafka would take for a partition: the log directory is a folder
		// of the volume.
		"/var/lib/kafka/data": "/var/lib/kafka",
	}},
	{service: "mongo", kind: "StatefulSet", name: "mongo", container: "mongo"},
	{service: "forgecast", kind: "Deployment", name: "forgecast-ingest", container: "forgecast"},
	{service: "forgecast-worker", kind: "Deployment", name: "forgecast-process", container: "forgecast"},
	{service: "forgecast-archive", kind: "Deployment", name: "forgecast-archive", container: "archive"},
	{service: "spark-master", kind: "Deployment", name: "spark-master", container: "spark-master"},
	{service: "spark-worker", kind: "Deployment", name: "spark-worker", container: "spark-worker"},
	{service: "spark-stream", kind: "Deployment", name: "spark-stream", container: "spark-stream"},
	// `--every 1d` is compose's scheduler; the CronJob's schedule is Kubernetes'.
	{service: "forgecast-history", kind: "CronJob", name: "forgecast-history", container: "aggregate",
		droppedArgs: []string{"--every", "1d"}},
}

// kubernetesOnly lists the overlay's workloads that compose has no service for, and why.
var kubernetesOnly = map[string]string{
	"Job/mongo-init": "compose's mongo healthcheck initiates the replica set",
}

// compareCompose checks that the overlay runs compose's services: the same image, entrypoint and command,
// variables, mount points (with the same read-only flag) and init process. It returns the services compared and the
// problems found.
func compareCompose(o *Overlay, r *Repo) ([]string, []string) {
	var p problems
	var compared []string
	mapped := map[string]bool{}
	for _, m := range composeServices {
		mapped[m.kind+"/"+m.name] = true
		service, err := r.compose.GetService(m.service)
		where := named(fmt.Sprintf("%s (compose's %s)", m.kind+"/"+m.name, m.service))
		if err != nil {
			p.add(where, "%s has no service %s: update the mapping in tools/kustomize-check/compose.go", composeFile, m.service)
			continue
		}
		w := o.workload(m.kind, m.name)
		if w == nil {
			p.add(where, "not in the overlay")
			continue
		}
		var c *Container
		for i := range w.Pod.Spec.Containers {
			if w.Pod.Spec.Containers[i].Name == m.container {
				c = &w.Pod.Spec.Containers[i]
			}
		}
		if c == nil {
			p.add(where, "has no container %s", m.container)
			continue
		}
		compared = append(compared, m.service)

		if c.Image != service.Image {
			p.add(where, "image %s, compose runs %s", c.Image, service.Image)
		}
		if !slices.Equal(c.Command, []string(service.Entrypoint)) {
			p.add(where, "command %q, compose's entrypoint is %q", c.Command, []string(service.Entrypoint))
		}
		command := withoutRun([]string(service.Command), m.droppedArgs)
		if len(service.Command) == 0 && r.images[service.Image] != nil && len(c.Args) > 0 {
			command = r.images[service.Image].cmd // compose runs the image's CMD; the manifest says it
		}
		if !slices.Equal(c.Args, command) {
			p.add(where, "args %q, compose runs %q", c.Args, command)
		}

		var help *Help
		if argv := r.argv(c); len(argv) > 1 && filepath.Base(argv[0]) == "forgecast" {
			help, _ = r.commandHelp(argv[1])
		}
		env := c.env()
		for _, name := range sortedKeys(service.Environment) {
			value := ""
			if v := service.Environment[name]; v != nil {
				value = *v
			}
			if _, on := m.differentEnv[name]; on {
				continue
			}
			got, set := env[name]
			switch {
			case help != nil && !help.env[name]:
				if !set {
					r.note("compose's %s sets %s, which `forgecast %s` does not read", m.service, name, r.argv(c)[1])
				}
			case !set:
				p.add(where, "compose sets %s=%s, the manifest does not", name, value)
			case value == "" && strings.HasPrefix(got, "secret:"):
				// compose takes a secret from where it runs; the manifest from the Secret.
			case got != value:
				p.add(where, "%s=%s, compose has %s", name, got, value)
			}
		}
		for _, name := range sortedKeys(env) {
			if _, inCompose := service.Environment[name]; !inCompose {
				if _, on := m.differentEnv[name]; !on {
					p.add(where, "sets %s, which compose's %s does not", name, m.service)
				}
			}
		}

		mounts := map[string]bool{} // mount path -> read-only
		for _, mount := range c.VolumeMounts {
			readOnly := mount.ReadOnly
			for _, v := range w.Pod.Spec.Volumes {
				if v.Name == mount.Name && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ReadOnly {
					readOnly = true
				}
			}
			mounts[mount.MountPath] = readOnly
		}
		for _, v := range service.Volumes {
			target := v.Target
			if above, ok := m.mountedAbove[target]; ok {
				target = above
			}
			readOnly, mounted := mounts[target]
			switch {
			case !mounted:
				p.add(where, "compose mounts %s at %s, the manifest mounts nothing at %s", v.Source, v.Target, target)
			case readOnly != v.ReadOnly:
				p.add(where, "%s is read-only %v here, %v in compose", target, readOnly, v.ReadOnly)
			}
		}
		for _, target := range service.Tmpfs {
			if readOnly, mounted := mounts[target]; !mounted || readOnly {
				p.add(where, "compose has a tmpfs at %s, the manifest no writable volume there", target)
			}
		}
		init := service.Init != nil && *service.Init
		shared := w.Pod.Spec.ShareProcessNamespace != nil && *w.Pod.Spec.ShareProcessNamespace
		if init != shared {
			p.add(where, "compose's init: %v, but shareProcessNamespace: %v (with it, the pod's pause process is PID 1 "+
				"and reaps orphans, as compose's init)", init, shared)
		}
	}
	for _, w := range o.Workloads {
		if _, ok := kubernetesOnly[w.String()]; !mapped[w.String()] && !ok {
			p.add(w, "compose has no service for it: add it to %s or to the mapping in tools/kustomize-check/compose.go",
				composeFile)
		}
	}
	for _, name := range r.compose.ServiceNames() {
		found := false
		for _, m := range composeServices {
			found = found || m.service == name
		}
		if !found {
			p.add(named(composeFile), "service %s has no counterpart in the %s overlay (tools/kustomize-check/compose.go)",
				name, composeOverlay)
		}
	}
	sort.Strings(compared)
	return compared, p
}

// withoutRun removes the first run of `drop` from args.
func withoutRun(args, drop []string) []string {
	if len(drop) == 0 {
		return args
	}
	for i := 0; i+len(drop) <= len(args); i++ {
		if slices.Equal(args[i:i+len(drop)], drop) {
			return append(append([]string{}, args[:i]...), args[i+len(drop):]...)
		}
	}
	return args
}
