package check

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeFile = "../../docker-compose.yml"

// loadCompose loads docker-compose.yml the way `docker compose config`
// does (compose-go, the library docker compose is built on: schema
// validation, interpolation, merging of anchors), with every profile on and
// an empty environment, so that defaults are what is checked.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithName("promptcascade"),
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnv(nil),
		cli.WithProfiles([]string{"cluster", "tools"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("no service %s", name)
	}
	return s
}

func envOf(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// mounts reports whether s mounts the host directory src (relative to the
// compose file) at target, read-only.
func mounts(s types.ServiceConfig, root, src, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == filepath.Join(root, src) && v.Target == target && v.ReadOnly {
			return true
		}
	}
	return false
}

// The compose file: routes from ./routes mounted read-only (ROUTES_FILE
// empty or inside it), enqueue of host files from ./data, host ports clear
// of a local NATS and Postgres, a drain that fits the stop grace period.
func TestCompose(t *testing.T) {
	p := loadCompose(t)
	root := p.WorkingDir

	for _, name := range []string{"worker", "worker-r3", "enqueue", "enqueue-r3"} {
		s := service(t, p, name)
		if !mounts(s, root, "routes", "/routes") {
			t.Errorf("%s does not mount ./routes at /routes read-only", name)
		}
		if rf := envOf(s, "ROUTES_FILE"); rf != "" && !strings.HasPrefix(rf, "/routes/") {
			t.Errorf("%s: ROUTES_FILE %q is not in the mounted /routes", name, rf)
		}
	}
	for _, name := range []string{"enqueue", "enqueue-r3"} {
		s := service(t, p, name)
		if !slices.Equal(s.Entrypoint, []string{"enqueue"}) {
			t.Errorf("%s: entrypoint %v, want [enqueue] (so that `docker compose run --rm %s /data/my.jsonl` works)", name, s.Entrypoint, name)
		}
		if !mounts(s, root, "data", "/data") {
			t.Errorf("%s does not mount ./data at /data read-only", name)
		}
		if last := s.Command[len(s.Command)-1]; !strings.HasPrefix(last, "/sample/") {
			t.Errorf("%s: default input %s, want the image's /sample file (./data is mounted over /data)", name, last)
		}
	}

	for _, name := range []string{"worker", "worker-r3"} {
		s := service(t, p, name)
		drain, err := time.ParseDuration(envOf(s, "WORKER_DRAIN_TIMEOUT"))
		if err != nil {
			t.Fatalf("%s: WORKER_DRAIN_TIMEOUT: %v", name, err)
		}
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) < drain+5*time.Second {
			t.Errorf("%s: stop_grace_period %v, want above WORKER_DRAIN_TIMEOUT %s", name, s.StopGracePeriod, drain)
		}
	}

	local := map[uint32]string{5432: "Postgres", 4222: "NATS", 8222: "NATS monitoring"}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			for _, clash := range []string{"5432", "4222", "8222"} {
				if port.Published == clash {
					t.Errorf("%s publishes host port %s: clashes with a local %s", name, clash, local[port.Target])
				}
			}
		}
	}
	if pg := service(t, p, "postgres"); len(pg.Ports) != 1 || pg.Ports[0].Published != "15432" {
		t.Errorf("postgres ports %+v, want host 15432", pg.Ports)
	}
}

// Profile "cluster": three NATS servers routed to each other, and a worker
// and an enqueue that use all three and create an R3 stream.
func TestComposeClusterProfile(t *testing.T) {
	p := loadCompose(t)
	nodes := []string{"nats-1", "nats-2", "nats-3"}
	var routes []string
	for _, n := range nodes {
		s := service(t, p, n)
		if !slices.Contains(s.Profiles, "cluster") {
			t.Errorf("%s is not in the cluster profile", n)
		}
		cmd := []string(s.Command)
		i := slices.Index(cmd, "--routes")
		if i < 0 || i+1 >= len(cmd) || !slices.Contains(cmd, "--cluster_name") || !slices.Contains(cmd, n) {
			t.Fatalf("%s: command %v lacks --name %s, --cluster_name or --routes", n, cmd, n)
		}
		routes = append(routes, cmd[i+1])
	}
	for _, r := range routes {
		for _, n := range nodes {
			if !strings.Contains(r, "nats://"+n+":6222") {
				t.Errorf("routes %s miss %s", r, n)
			}
		}
	}
	// cascadectl too: resume, retry, cancel, dlq replay and verify use the
	// stream, and the single server's cascadectl would resume a batch onto
	// another one.
	for _, name := range []string{"worker-r3", "enqueue-r3", "cascadectl-r3"} {
		s := service(t, p, name)
		if !slices.Contains(s.Profiles, "cluster") {
			t.Errorf("%s is not in the cluster profile", name)
		}
		if envOf(s, "NATS_STREAM_REPLICAS") != "3" {
			t.Errorf("%s: NATS_STREAM_REPLICAS %q, want 3", name, envOf(s, "NATS_STREAM_REPLICAS"))
		}
		url := envOf(s, "NATS_URL")
		for _, n := range nodes {
			if !strings.Contains(url, "nats://"+n+":4222") {
				t.Errorf("%s: NATS_URL %s misses %s", name, url, n)
			}
			if _, ok := s.DependsOn[n]; !ok {
				t.Errorf("%s does not wait for %s", name, n)
			}
		}
	}
	if s := service(t, p, "cascadectl-r3"); !slices.Equal(s.Entrypoint, []string{"cascadectl"}) {
		t.Errorf("cascadectl-r3: entrypoint %v, want [cascadectl]", s.Entrypoint)
	}
	// The single-server services stay out of the cluster profile's way.
	if s := service(t, p, "worker"); len(s.Profiles) != 0 || envOf(s, "NATS_URL") != "nats://nats:4222" {
		t.Errorf("worker: profiles %v, NATS_URL %s", s.Profiles, envOf(s, "NATS_URL"))
	}
}
