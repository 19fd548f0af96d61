package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeFile is the distributed mode's compose file, and composeOverlay the overlay that must run the same services.
const (
	composeFile    = "compose/docker-compose.yml"
	composeOverlay = "distributed"
)

// readByName lists the variables the binary reads by name besides those its `--help` shows (`[env: X=]`), with the
// file that reads each (checked to name it) and the commands that read it (all when empty).
var readByName = []struct {
	name, file string
	commands   []string
}{
	{"FORGECAST_LOG_FORMAT", "runtime/server/src/logging.rs", nil}, // json: JSON lines
	{"RUST_LOG", "runtime/server/src/logging.rs", nil},             // the log filter
	{"GITHUB_TOKEN", "runtime/server/src/config.rs", []string{"up"}},
	{"FORGECAST_ADMIN_TOKEN", "runtime/server/src/config.rs", []string{"up", "tap"}},
}

// Repo is what the checks know of the repository: the compose project, the images it builds and the binary's
// commands.
type Repo struct {
	root    string
	binary  string
	compose *types.Project
	// The images compose builds, by name, with what their Dockerfile says.
	images map[string]*Dockerfile
	help   map[string]*Help
	notes  []string
}

// Dockerfile is what the checks need of a Dockerfile's last stage.
type Dockerfile struct {
	path       string
	entrypoint []string
	cmd        []string
	// Repository path -> image path, for each COPY from the build context.
	copies map[string]string
}

// Help is what `forgecast COMMAND --help` lists.
type Help struct {
	env   map[string]bool
	flags map[string]bool
}

func loadRepo(root, binary string) (*Repo, error) {
	r := &Repo{root: root, binary: binary, images: map[string]*Dockerfile{}, help: map[string]*Help{}}
	for _, v := range readByName {
		source, err := os.ReadFile(filepath.Join(root, v.file))
		if err != nil || !strings.Contains(string(source), v.name) {
			return nil, fmt.Errorf("%s no longer names %s: update readByName in tools/kustomize-check", v.file, v.name)
		}
	}
	// No environment: each ${VAR:-default} of the compose file takes its default, as on a machine without them set.
	options, err := cli.NewProjectOptions([]string{filepath.Join(root, composeFile)},
		cli.WithName("forgecast"), cli.WithEnv([]string{}), cli.WithProfiles([]string{"*"}),
		cli.WithInterpolation(true), cli.WithNormalization(true), cli.WithResolvedPaths(true))
	if err != nil {
		return nil, err
	}
	if r.compose, err = options.LoadProject(context.Background()); err != nil {
		return nil, fmt.Errorf("%s: %w", composeFile, err)
	}
	for _, service := range r.compose.Services {
		if service.Build == nil || service.Image == "" {
			continue
		}
		path := service.Build.Dockerfile
		if !filepath.IsAbs(path) {
			path = filepath.Join(service.Build.Context, path)
		}
		dockerfile, err := readDockerfile(path)
		if err != nil {
			return nil, err
		}
		r.images[service.Image] = dockerfile
	}
	if len(r.images) == 0 {
		return nil, fmt.Errorf("%s builds no image", composeFile)
	}
	return r, nil
}

// readDockerfile reads the last stage's ENTRYPOINT, CMD (exec form) and COPY instructions; lines continued with a
// backslash are joined.
func readDockerfile(path string) (*Dockerfile, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := &Dockerfile{path: path, copies: map[string]string{}}
	joined := strings.ReplaceAll(string(text), "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		rest := strings.TrimSpace(line[len(fields[0]):])
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			*d = Dockerfile{path: path, copies: map[string]string{}}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &d.entrypoint); err != nil {
				return nil, fmt.Errorf("%s: ENTRYPOINT is not in exec form: %s", path, rest)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &d.cmd); err != nil {
				return nil, fmt.Errorf("%s: CMD is not in exec form: %s", path, rest)
			}
		case "COPY":
			if strings.Contains(rest, "--from=") || len(fields) != 3 {
				continue
			}
			d.copies[fields[1]] = fields[2]
		}
	}
	return d, nil
}

// commandHelp runs `forgecast COMMAND --help` once and keeps what it lists.
func (r *Repo) commandHelp(command string) (*Help, error) {
	if h, ok := r.help[command]; ok {
		return h, nil
	}
	out, err := exec.Command(r.binary, command, "--help").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("`forgecast %s --help` fails (%v): %s", command, err, firstLine(string(out)))
	}
	h := &Help{env: map[string]bool{}, flags: map[string]bool{}}
	for _, m := range regexp.MustCompile(`\[env: ([A-Za-z0-9_]+)=`).FindAllStringSubmatch(string(out), -1) {
		h.env[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-[A-Za-z], )?(--[a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		h.flags[m[1]] = true
	}
	for _, v := range readByName {
		if len(v.commands) == 0 || contains(v.commands, command) {
			h.env[v.name] = true
		}
	}
	r.help[command] = h
	return h, nil
}

// argv is what a container runs: its command, or the image's entrypoint, then its args, or the image's command.
func (r *Repo) argv(c *Container) []string {
	image := r.images[c.Image]
	command, args := c.Command, c.Args
	if len(command) == 0 && image != nil {
		command = image.entrypoint
		if len(args) == 0 {
			args = image.cmd
		}
	}
	return append(append([]string{}, command...), args...)
}

// pythonJob returns the repository file of a Python program that a locally built image runs (`python3 FILE`), or "".
func (r *Repo) pythonJob(c *Container) string {
	image := r.images[c.Image]
	argv := r.argv(c)
	if image == nil || len(argv) < 2 || !strings.HasPrefix(filepath.Base(argv[0]), "python") {
		return ""
	}
	for source, target := range image.copies {
		if rest, ok := strings.CutPrefix(argv[1], strings.TrimSuffix(target, "/")+"/"); ok {
			return filepath.Join(r.root, source, rest)
		}
	}
	return ""
}

func (r *Repo) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
