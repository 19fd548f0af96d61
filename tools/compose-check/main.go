// compose-check validates a Compose file with the Compose specification's own loader (compose-go, the library
// `docker compose` uses), as far as a machine without a Docker engine can:
//
//   - the file loads as project "forgecast" with every profile active: schema validation (unknown keys, wrong
//     types), interpolation, normalization and the loader's consistency checks (undefined services in
//     depends_on, undefined volumes, networks, secrets, ...);
//   - every build context is a directory and its Dockerfile exists;
//   - every bind-mounted host path exists;
//   - every `depends_on: {condition: service_healthy}` names a service that has a healthcheck (its own, or a
//     HEALTHCHECK in the Dockerfile it is built from).
//
// The environment is the process's plus the .env file beside the compose file, as for `docker compose`.
//
// usage: compose-check COMPOSE_FILE
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const projectName = "forgecast"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check COMPOSE_FILE")
		os.Exit(2)
	}
	file := os.Args[1]
	project, err := load(file)
	if err != nil {
		message := err.Error()
		if strings.HasSuffix(message, " false schema") {
			// What the schema validator says of a key that the specification does not allow there.
			message += " (a key the Compose specification does not have there: a typo?)"
		}
		fail(file, message)
	}
	if problems := check(project); len(problems) > 0 {
		fail(file, strings.Join(problems, "\n  "))
	}
	fmt.Printf("compose-check: %s valid (project %s): %s; volumes: %s\n",
		file, project.Name, describeServices(project), strings.Join(sorted(project.VolumeNames()), ", "))
}

func fail(file, message string) {
	fmt.Fprintf(os.Stderr, "compose-check: %s:\n  %s\n", file, message)
	os.Exit(1)
}

func load(file string) (*types.Project, error) {
	options, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithName(projectName),
		cli.WithOsEnv,
		cli.WithDotEnv,
		// Every profile, so that services behind one are checked too.
		cli.WithProfiles([]string{"*"}),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		return nil, err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	if len(project.Services) == 0 {
		return nil, fmt.Errorf("no services")
	}
	return project, nil
}

// check returns every problem the loader does not look for, one line each.
func check(project *types.Project) []string {
	var problems []string
	for _, name := range sorted(project.ServiceNames()) {
		service := project.Services[name]
		if build := service.Build; build != nil && isLocal(build.Context) {
			if !isDir(build.Context) {
				problems = append(problems, fmt.Sprintf("services.%s.build.context: %s is not a directory", name, build.Context))
			} else if build.DockerfileInline == "" {
				if path := dockerfilePath(build); !isFile(path) {
					problems = append(problems, fmt.Sprintf("services.%s.build.dockerfile: %s does not exist", name, path))
				}
			}
		}
		for i, volume := range service.Volumes {
			if volume.Type == types.VolumeTypeBind {
				if _, err := os.Stat(volume.Source); err != nil {
					problems = append(problems, fmt.Sprintf("services.%s.volumes[%d]: the bind-mounted host path %s does not exist", name, i, volume.Source))
				}
			}
		}
		for _, dependency := range sorted(keys(service.DependsOn)) {
			if service.DependsOn[dependency].Condition != types.ServiceConditionHealthy {
				continue
			}
			target, ok := project.Services[dependency]
			if ok && !hasHealthcheck(target) {
				problems = append(problems, fmt.Sprintf("services.%s.depends_on.%s: condition service_healthy, but %s has no healthcheck", name, dependency, dependency))
			}
		}
	}
	return problems
}

func isLocal(context string) bool {
	return context != "" && filepath.IsAbs(context) && !strings.Contains(context, "://")
}

func dockerfilePath(build *types.BuildConfig) string {
	dockerfile := build.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if filepath.IsAbs(dockerfile) {
		return dockerfile
	}
	return filepath.Join(build.Context, dockerfile)
}

func hasHealthcheck(service types.ServiceConfig) bool {
	if hc := service.HealthCheck; hc != nil {
		if hc.Disable || (len(hc.Test) > 0 && hc.Test[0] == "NONE") {
			return false
		}
		if len(hc.Test) > 0 {
			return true
		}
	}
	// No test of its own: the image's HEALTHCHECK applies, which we can only see for a local build.
	if build := service.Build; build != nil && isLocal(build.Context) && build.DockerfileInline == "" {
		return dockerfileHasHealthcheck(dockerfilePath(build))
	}
	return false
}

func dockerfileHasHealthcheck(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	found := false
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 0 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			found = false // a later stage starts without the earlier one's healthcheck
		case "HEALTHCHECK":
			found = len(fields) < 2 || strings.ToUpper(fields[1]) != "NONE"
		}
	}
	return found
}

func describeServices(project *types.Project) string {
	var always, profiled []string
	for _, name := range sorted(project.ServiceNames()) {
		if profiles := project.Services[name].Profiles; len(profiles) > 0 {
			profiled = append(profiled, fmt.Sprintf("%s (profile %s)", name, strings.Join(profiles, ", ")))
		} else {
			always = append(always, name)
		}
	}
	return fmt.Sprintf("%d services: %s", len(always)+len(profiled), strings.Join(append(always, profiled...), ", "))
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sorted(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out
}
