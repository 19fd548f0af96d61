// kustomize-check renders the Kubernetes manifests with kustomize's own library (the krusty API that `kubectl
// kustomize` runs) and checks what a machine without a cluster can:
//
//   - every overlay under k8s/overlays renders, with the load restrictor off (the scripts ConfigMap is made from the
//     repository's scripts/, outside k8s/), as `kubectl kustomize --load-restrictor LoadRestrictionsNone` would;
//   - each object, pod template and claim template carries the app.kubernetes.io labels name, instance, component
//     and part-of;
//   - each image is one compose/docker-compose.yml builds (forgecast:latest, forgecast-spark:latest: not pulled) or
//     one it runs with a pinned tag;
//   - each Service selects pods the overlay has, and each of its target ports is a port those pods' containers
//     expose; each PodDisruptionBudget and NetworkPolicy selects pods the overlay has;
//   - each mounted volume exists; each ConfigMap a pod mounts exists with the keys its items name, and each key of
//     a mounted ConfigMap is mounted; each claim exists; each Secret key is optional (the manifests carry no Secret);
//   - every pod runs as non-root with the runtime's default seccomp profile and without service links, every
//     container with a read-only root, no privilege escalation, no capabilities, and requests and limits;
//   - every container that runs the forgecast binary uses a command it has, flags its `--help` lists and variables
//     it reads (`[env: X=]` in `--help`, or one of the few read by name, see forgecast.go); `forgecast up` has its
//     /readyz and /healthz probes on the port it listens on; a Spark job's flags are the job's own;
//   - the scripts ConfigMap equals scripts/, file for file, and the pods mount each key back at its path, at the
//     directory FORGECAST_SCRIPTS names;
//   - each pod that names Kafka's or MongoDB's Service is let through by their NetworkPolicy; every MongoDB URI
//     names the replica set the StatefulSet runs, and the mongo-init Job initiates that set with its member count;
//   - the distributed overlay runs the services of compose/docker-compose.yml: the same images, commands, variables
//     and mount points, service for service (compose.go has the mapping and the differences on purpose).
//
// The rendered YAML of each overlay is written to OUT/<overlay>.yaml, for tools/check-k8s.py to validate against
// the Kubernetes schemas.
//
// usage:
//
//	kustomize-check render DIR                     print the rendered YAML of the kustomization in DIR
//	kustomize-check json DIR                       the same objects as one JSON array
//	kustomize-check check -forgecast BIN [-out OUT] REPO
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "render", "json":
		if len(os.Args) != 3 {
			usage()
		}
		rendered, err := render(os.Args[2])
		if err != nil {
			die(err.Error())
		}
		if os.Args[1] == "render" {
			os.Stdout.Write(rendered.yaml)
		} else {
			os.Stdout.Write(rendered.json)
		}
	case "check":
		flags := flag.NewFlagSet("check", flag.ExitOnError)
		binary := flags.String("forgecast", "", "the forgecast binary whose `--help` lists the flags and variables")
		out := flags.String("out", "", "directory for the rendered YAML of each overlay")
		flags.Parse(os.Args[2:])
		if *binary == "" || flags.NArg() != 1 {
			usage()
		}
		if !check(flags.Arg(0), *binary, *out) {
			os.Exit(1)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kustomize-check render DIR | json DIR | check -forgecast BINARY [-out DIR] REPO")
	os.Exit(2)
}

func die(message string) {
	fmt.Fprintf(os.Stderr, "kustomize-check: %s\n", message)
	os.Exit(1)
}

// check renders and checks every overlay of the repository at root; false if any problem was found.
func check(root, binary, out string) bool {
	overlays, err := filepath.Glob(filepath.Join(root, "k8s", "overlays", "*", "kustomization.yaml"))
	if err != nil || len(overlays) == 0 {
		die(fmt.Sprintf("no overlays under %s", filepath.Join(root, "k8s", "overlays")))
	}
	repo, err := loadRepo(root, binary)
	if err != nil {
		die(err.Error())
	}
	ok := true
	for _, file := range overlays {
		dir := filepath.Dir(file)
		name := filepath.Base(dir)
		where := filepath.Join("k8s", "overlays", name)
		rendered, err := render(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kustomize-check: %s does not render:\n  %s\n", where, err)
			ok = false
			continue
		}
		if out != "" {
			if err := os.MkdirAll(out, 0o755); err != nil {
				die(err.Error())
			}
			if err := os.WriteFile(filepath.Join(out, name+".yaml"), rendered.yaml, 0o644); err != nil {
				die(err.Error())
			}
		}
		overlay := newOverlay(name, rendered.objects)
		problems := checkOverlay(overlay, repo)
		var compared []string
		if name == composeOverlay {
			var more []string
			compared, more = compareCompose(overlay, repo)
			problems = append(problems, more...)
		}
		if len(problems) > 0 {
			fmt.Fprintf(os.Stderr, "kustomize-check: %s:\n  %s\n", where, strings.Join(problems, "\n  "))
			ok = false
			continue
		}
		summary := fmt.Sprintf("kustomize-check: %s renders %d objects (%s); all checks pass", where,
			len(rendered.objects), kinds(rendered.objects))
		if len(compared) > 0 {
			summary += fmt.Sprintf("; the same as compose for %s", strings.Join(compared, ", "))
		}
		fmt.Println(summary)
	}
	for _, note := range repo.notes {
		fmt.Printf("kustomize-check: note: %s\n", note)
	}
	return ok
}

func kinds(objects []Object) string {
	count := map[string]int{}
	for _, o := range objects {
		count[o.Kind]++
	}
	var parts []string
	for kind, n := range count {
		parts = append(parts, fmt.Sprintf("%d %s", n, kind))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
