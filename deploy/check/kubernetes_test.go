package check

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const kubeDir = "../kubernetes"

// object is one rendered manifest.
type object struct {
	Kind, APIVersion, Name, Namespace string
	yaml                              []byte
}

// render runs kustomize (the library behind `kustomize build` and
// `kubectl apply -k`) on dir.
func render(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []object
	for _, r := range rm.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		objs = append(objs, object{Kind: r.GetKind(), APIVersion: r.GetApiVersion(), Name: r.GetName(), Namespace: r.GetNamespace(), yaml: b})
	}
	if len(objs) == 0 {
		t.Fatalf("kustomize build %s rendered nothing", dir)
	}
	return objs
}

// decode decodes a manifest strictly into its Go type: a field the type
// does not have (a typo, a wrong level of indentation) is an error.
func decode(t *testing.T, o object, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(o.yaml, into); err != nil {
		t.Fatalf("%s %s: %v\n%s", o.Kind, o.Name, err, o.yaml)
	}
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return object{}
}

// The API versions every rendered object may use: built-in kinds at their
// current versions, and the CRDs of KEDA and CloudNativePG.
var knownKinds = map[string]string{
	"Namespace": "v1", "ConfigMap": "v1", "Service": "v1",
	"Deployment": "apps/v1", "Job": "batch/v1", "PodDisruptionBudget": "policy/v1",
	"ScaledObject": "keda.sh/v1alpha1", "Cluster": "postgresql.cnpg.io/v1",
	"PersistentVolumeClaim": "v1", "Pod": "v1",
}

// Every kustomization renders, every object is of a known kind and version,
// lives in the promptcascade namespace and decodes strictly.
func TestKubernetesRenders(t *testing.T) {
	for _, dir := range []string{"", "enqueue", "enqueue/input", "postgres"} {
		for _, o := range render(t, filepath.Join(kubeDir, dir)) {
			if v, ok := knownKinds[o.Kind]; !ok || v != o.APIVersion {
				t.Errorf("%s: %s %s: unexpected kind or apiVersion (want %q)", dir, o.APIVersion, o.Kind, v)
			}
			if o.Kind != "Namespace" && o.Namespace != "promptcascade" {
				t.Errorf("%s: %s %s in namespace %q, want promptcascade", dir, o.Kind, o.Name, o.Namespace)
			}
			var into any
			switch o.Kind {
			case "Namespace":
				into = &corev1.Namespace{}
			case "ConfigMap":
				into = &corev1.ConfigMap{}
			case "Service":
				into = &corev1.Service{}
			case "Deployment":
				into = &appsv1.Deployment{}
			case "Job":
				into = &batchv1.Job{}
			case "PodDisruptionBudget":
				into = &policyv1.PodDisruptionBudget{}
			case "PersistentVolumeClaim":
				into = &corev1.PersistentVolumeClaim{}
			case "Pod":
				into = &corev1.Pod{}
			case "ScaledObject":
				into = &scaledObject{}
			case "Cluster":
				into = &cnpgCluster{}
			}
			decode(t, o, into)
		}
	}
}

func env(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// The worker Deployment: resources, probes on /healthz and /readyz, a grace
// period above the drain timeout, keys from a Secret, routes from the
// generated ConfigMap, replicas left to KEDA.
func TestKubernetesWorker(t *testing.T) {
	objs := render(t, kubeDir)
	var d appsv1.Deployment
	decode(t, find(t, objs, "Deployment", "promptcascade-worker"), &d)
	if d.Spec.Replicas != nil {
		t.Error("the Deployment sets replicas: kubectl apply would fight KEDA over them")
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Command, []string{"worker"}) {
		t.Errorf("command %v, want [worker]", c.Command)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	probe := func(what string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("%s probe %+v, want GET %s on the metrics port", what, p, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9090 {
		t.Errorf("ports %+v, want metrics 9090", c.Ports)
	}
	if e := env(c, "METRICS_ADDR"); e == nil || e.Value != ":9090" {
		t.Errorf("METRICS_ADDR %+v, want :9090 (the probes' port)", e)
	}

	drain := 25 * time.Second // the worker's default
	if e := env(c, "WORKER_DRAIN_TIMEOUT"); e != nil {
		var err error
		if drain, err = time.ParseDuration(e.Value); err != nil {
			t.Fatalf("WORKER_DRAIN_TIMEOUT %q: %v", e.Value, err)
		}
	}
	if pod.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds")
	}
	if grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; grace < drain+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v, want at least WORKER_DRAIN_TIMEOUT (%s) + 10s", grace, drain)
	}

	if e := env(c, "DATABASE_URL"); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
		e.ValueFrom.SecretKeyRef.Name != "promptcascade-db-app" || e.ValueFrom.SecretKeyRef.Key != "uri" {
		t.Errorf("DATABASE_URL %+v, want the CloudNativePG app Secret's uri", e)
	}
	keys := false
	for _, f := range c.EnvFrom {
		keys = keys || (f.SecretRef != nil && f.SecretRef.Name == "promptcascade-provider-keys")
	}
	if !keys {
		t.Error("provider keys do not come from the Secret promptcascade-provider-keys")
	}
	for _, e := range c.Env {
		if strings.HasSuffix(e.Name, "_API_KEY") && e.Value != "" {
			t.Errorf("%s has a literal value: keys belong in the Secret", e.Name)
		}
	}
	if e := env(c, "NATS_STREAM_REPLICAS"); e == nil || e.Value != "3" {
		t.Errorf("NATS_STREAM_REPLICAS %+v, want 3 (the NATS chart runs 3 servers)", e)
	}

	// Routes: ROUTES_FILE is a file of the mounted, generated ConfigMap.
	routes := env(c, "ROUTES_FILE")
	if routes == nil {
		t.Fatal("no ROUTES_FILE")
	}
	var mounted bool
	for _, m := range c.VolumeMounts {
		if filepath.Dir(routes.Value) != m.MountPath {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm := find(t, objs, "ConfigMap", v.ConfigMap.Name)
			var m corev1.ConfigMap
			decode(t, cm, &m)
			file := filepath.Base(routes.Value)
			want, err := os.ReadFile(filepath.Join(kubeDir, file))
			if err != nil {
				t.Fatal(err)
			}
			if m.Data[file] != string(want) {
				t.Errorf("ConfigMap %s key %s is not %s/%s", cm.Name, file, kubeDir, file)
			}
			if !strings.HasPrefix(cm.Name, "promptcascade-routes-") {
				t.Errorf("routes ConfigMap %s has no content hash: editing the routes would not roll the workers", cm.Name)
			}
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("ROUTES_FILE %s is not in a mounted ConfigMap", routes.Value)
	}

	// The PDB and the Service select the worker pods.
	sel := d.Spec.Template.Labels
	var pdb policyv1.PodDisruptionBudget
	decode(t, find(t, objs, "PodDisruptionBudget", "promptcascade-worker"), &pdb)
	if pdb.Spec.Selector == nil || !subset(pdb.Spec.Selector.MatchLabels, sel) || (pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil) {
		t.Errorf("PodDisruptionBudget %+v does not limit the worker pods %v", pdb.Spec, sel)
	}
	var svc corev1.Service
	decode(t, find(t, objs, "Service", "promptcascade-worker"), &svc)
	if !subset(svc.Spec.Selector, sel) {
		t.Errorf("Service selects %v, not the worker pods %v", svc.Spec.Selector, sel)
	}
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// scaledObject holds the ScaledObject fields KEDA documents that the
// manifest uses (keda.sh/v1alpha1); strict decoding refuses others.
type scaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			Name       string `json:"name"`
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int `json:"minReplicaCount"`
		MaxReplicaCount *int `json:"maxReplicaCount"`
		PollingInterval *int `json:"pollingInterval"`
		CooldownPeriod  *int `json:"cooldownPeriod"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// KEDA's nats-jetstream scaler (metadata as KEDA documents it) on the
// worker's stream and consumer scales the worker Deployment down to zero.
func TestKubernetesScaledObject(t *testing.T) {
	objs := render(t, kubeDir)
	var so scaledObject
	decode(t, find(t, objs, "ScaledObject", "promptcascade-worker"), &so)
	var d appsv1.Deployment
	decode(t, find(t, objs, "Deployment", "promptcascade-worker"), &d)
	c := d.Spec.Template.Spec.Containers[0]

	if so.Spec.ScaleTargetRef.Name != d.Name || (so.Spec.ScaleTargetRef.Kind != "" && so.Spec.ScaleTargetRef.Kind != "Deployment") {
		t.Errorf("scales %+v, want the Deployment %s", so.Spec.ScaleTargetRef, d.Name)
	}
	if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount != 0 {
		t.Error("minReplicaCount is not 0: workers do not scale to zero")
	}
	if so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount < 1 {
		t.Error("no maxReplicaCount")
	}
	// One trigger per priority consumer (queue.priorityConsumer: the
	// worker's NATS_CONSUMER for normal, -high and -low for the others),
	// all alike but for the consumer: a high or low batch alone must
	// bring workers up from zero too.
	consumer := env(c, "NATS_CONSUMER")
	if consumer == nil || consumer.Value == "" {
		t.Fatal("the worker Deployment sets no NATS_CONSUMER")
	}
	wantConsumers := []string{consumer.Value, consumer.Value + "-high", consumer.Value + "-low"}
	if len(so.Spec.Triggers) != len(wantConsumers) {
		t.Fatalf("triggers %+v, want one nats-jetstream per priority consumer %q", so.Spec.Triggers, wantConsumers)
	}
	var consumers []string
	md := so.Spec.Triggers[0].Metadata
	for i, tr := range so.Spec.Triggers {
		if tr.Type != "nats-jetstream" {
			t.Fatalf("trigger %d is %q, want nats-jetstream", i, tr.Type)
		}
		consumers = append(consumers, tr.Metadata["consumer"])
		for k, v := range md {
			if k != "consumer" && tr.Metadata[k] != v {
				t.Errorf("trigger %d: %s %q, but the first trigger has %q", i, k, tr.Metadata[k], v)
			}
		}
		if len(tr.Metadata) != len(md) {
			t.Errorf("trigger %d metadata %v, want the keys of the first %v", i, tr.Metadata, md)
		}
	}
	slices.Sort(consumers)
	slices.Sort(wantConsumers)
	if !slices.Equal(consumers, wantConsumers) {
		t.Errorf("triggers on consumers %q, want %q (one per priority)", consumers, wantConsumers)
	}
	documented := []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold", "activationLagThreshold", "useHttps"}
	for k := range md {
		if !slices.Contains(documented, k) {
			t.Errorf("trigger metadata %q is not one KEDA documents for nats-jetstream", k)
		}
	}
	for _, k := range []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"} {
		if md[k] == "" {
			t.Errorf("trigger metadata %s missing", k)
		}
	}
	if e := env(c, "NATS_STREAM"); e == nil || e.Value != md["stream"] {
		t.Errorf("trigger stream %q is not the worker's NATS_STREAM (%+v)", md["stream"], e)
	}
	if !strings.HasSuffix(md["natsServerMonitoringEndpoint"], ":8222") {
		t.Errorf("natsServerMonitoringEndpoint %q: want the monitoring port 8222", md["natsServerMonitoringEndpoint"])
	}
	// The workers' NATS_URL is the chart's client Service (<release>.<ns>.svc...);
	// KEDA reads the same release's headless Service (<release>-headless), by
	// which a clustered NATS's consumer leader is found by pod name.
	if u := env(c, "NATS_URL"); u == nil {
		t.Error("the worker Deployment sets no NATS_URL")
	} else {
		host := strings.TrimSuffix(strings.TrimPrefix(u.Value, "nats://"), ":4222")
		release, rest, ok := strings.Cut(host, ".")
		if want := release + "-headless." + rest + ":8222"; !ok || md["natsServerMonitoringEndpoint"] != want {
			t.Errorf("natsServerMonitoringEndpoint %q, want %q: the headless Service of the NATS the workers use (%s)", md["natsServerMonitoringEndpoint"], want, u.Value)
		}
	}
	var lag int
	if _, err := fmt.Sscan(md["lagThreshold"], &lag); err != nil || lag <= 0 {
		t.Errorf("lagThreshold %q: want a positive number", md["lagThreshold"])
	}
	var max int
	if _, err := fmt.Sscan(env(c, "NATS_MAX_ACK_PENDING").Value, &max); err != nil || max < lag {
		t.Errorf("NATS_MAX_ACK_PENDING %d below lagThreshold %d: one worker's share could not be in flight", max, lag)
	}
}

// The enqueue Job runs enqueue once (no restart loop of a finished Job),
// with the worker's NATS and database settings.
func TestKubernetesEnqueueJob(t *testing.T) {
	objs := render(t, filepath.Join(kubeDir, "enqueue"))
	var j batchv1.Job
	decode(t, find(t, objs, "Job", "promptcascade-enqueue"), &j)
	pod := j.Spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyOnFailure && pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q", pod.RestartPolicy)
	}
	c := pod.Containers[0]
	if len(c.Command) < 2 || c.Command[0] != "enqueue" {
		t.Errorf("command %v, want enqueue ...", c.Command)
	}
	input := c.Command[len(c.Command)-1]
	var mounted bool
	for _, m := range c.VolumeMounts {
		mounted = mounted || strings.HasPrefix(input, m.MountPath+"/")
	}
	if !mounted {
		t.Errorf("input %s is not on a mounted volume", input)
	}

	// enqueue/input provides the Job's claim, and a pod that mounts it
	// writable at the same path, so that `kubectl cp FILE loader:INPUT`
	// puts the file where the Job reads it.
	var claim string
	var inputMount string
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name && strings.HasPrefix(input, m.MountPath+"/") {
				claim, inputMount = v.PersistentVolumeClaim.ClaimName, m.MountPath
			}
		}
	}
	if claim == "" {
		t.Fatalf("input %s is not on a PersistentVolumeClaim", input)
	}
	in := render(t, filepath.Join(kubeDir, "enqueue", "input"))
	var pvc corev1.PersistentVolumeClaim
	decode(t, find(t, in, "PersistentVolumeClaim", claim), &pvc)
	if pvc.Spec.Resources.Requests.Storage().IsZero() {
		t.Errorf("PersistentVolumeClaim %s requests no storage", claim)
	}
	var loader corev1.Pod
	decode(t, find(t, in, "Pod", "promptcascade-input-loader"), &loader)
	var loads bool
	for _, v := range loader.Spec.Volumes {
		if v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != claim || v.PersistentVolumeClaim.ReadOnly {
			continue
		}
		for _, m := range loader.Spec.Containers[0].VolumeMounts {
			loads = loads || (m.Name == v.Name && m.MountPath == inputMount && !m.ReadOnly)
		}
	}
	if !loads {
		t.Errorf("the loader pod does not mount %s writable at %s (where the Job reads %s)", claim, inputMount, input)
	}

	var d appsv1.Deployment
	decode(t, find(t, render(t, kubeDir), "Deployment", "promptcascade-worker"), &d)
	w := d.Spec.Template.Spec.Containers[0]
	for _, name := range []string{"NATS_URL", "NATS_STREAM_REPLICAS", "DATABASE_URL"} {
		je, we := env(c, name), env(w, name)
		if je == nil || we == nil || fmt.Sprint(*je) != fmt.Sprint(*we) {
			t.Errorf("%s differs between the Job (%+v) and the workers (%+v)", name, je, we)
		}
	}
}

// cnpgCluster holds the CloudNativePG Cluster fields the example uses.
type cnpgCluster struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Instances             int    `json:"instances"`
		PrimaryUpdateStrategy string `json:"primaryUpdateStrategy"`
		PostgreSQL            struct {
			Synchronous *struct {
				Method         string `json:"method"`
				Number         int    `json:"number"`
				DataDurability string `json:"dataDurability"`
			} `json:"synchronous"`
			Parameters map[string]string `json:"parameters"`
		} `json:"postgresql"`
		Bootstrap struct {
			InitDB struct {
				Database string `json:"database"`
				Owner    string `json:"owner"`
			} `json:"initdb"`
		} `json:"bootstrap"`
		Storage struct {
			Size string `json:"size"`
		} `json:"storage"`
		WalStorage *struct {
			Size string `json:"size"`
		} `json:"walStorage"`
		Resources corev1.ResourceRequirements `json:"resources"`
		Affinity  struct {
			EnablePodAntiAffinity bool   `json:"enablePodAntiAffinity"`
			TopologyKey           string `json:"topologyKey"`
		} `json:"affinity"`
	} `json:"spec"`
}

// The CloudNativePG Cluster replicates synchronously (a failover loses no
// acknowledged commit) and writes the Secret the workers read.
func TestKubernetesPostgresCluster(t *testing.T) {
	objs := render(t, filepath.Join(kubeDir, "postgres"))
	var c cnpgCluster
	decode(t, find(t, objs, "Cluster", "promptcascade-db"), &c)
	if c.Spec.Instances < 3 {
		t.Errorf("%d instances, want 3 (a primary and two replicas)", c.Spec.Instances)
	}
	s := c.Spec.PostgreSQL.Synchronous
	if s == nil || s.Number < 1 || s.Method == "" || s.DataDurability != "required" {
		t.Errorf("synchronous %+v: want at least one synchronous replica, durability required", s)
	}
	if c.Spec.Bootstrap.InitDB.Database != "promptcascade" || c.Spec.Storage.Size == "" {
		t.Errorf("bootstrap %+v, storage %+v", c.Spec.Bootstrap, c.Spec.Storage)
	}
	// CloudNativePG names the application Secret <cluster>-app.
	var d appsv1.Deployment
	decode(t, find(t, render(t, kubeDir), "Deployment", "promptcascade-worker"), &d)
	if ref := env(d.Spec.Template.Spec.Containers[0], "DATABASE_URL").ValueFrom.SecretKeyRef; ref.Name != c.Metadata.Name+"-app" {
		t.Errorf("workers read Secret %s; CloudNativePG writes %s-app", ref.Name, c.Metadata.Name)
	}
}

// natsValues holds the keys of the official NATS chart's values.yaml that
// the values file sets; strict decoding refuses a key that is not here.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `json:"enabled"`
			Replicas int  `json:"replicas"`
		} `json:"cluster"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				Enabled bool   `json:"enabled"`
				Dir     string `json:"dir"`
				PVC     struct {
					Enabled          bool   `json:"enabled"`
					Size             string `json:"size"`
					StorageClassName string `json:"storageClassName"`
				} `json:"pvc"`
			} `json:"fileStore"`
			MemoryStore struct {
				Enabled bool `json:"enabled"`
			} `json:"memoryStore"`
		} `json:"jetstream"`
		Monitor struct {
			Enabled bool `json:"enabled"`
			Port    int  `json:"port"`
		} `json:"monitor"`
		Merge map[string]any `json:"merge"`
	} `json:"config"`
	Container struct {
		Merge struct {
			Resources corev1.ResourceRequirements `json:"resources"`
		} `json:"merge"`
	} `json:"container"`
	PodDisruptionBudget struct {
		Enabled bool `json:"enabled"`
	} `json:"podDisruptionBudget"`
}

// The NATS chart values: three servers, clustered JetStream on persistent
// file storage, the monitoring port KEDA reads.
func TestNATSChartValues(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(kubeDir, "nats", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v natsValues
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatalf("nats/values.yaml: %v", err)
	}
	cl, js := v.Config.Cluster, v.Config.JetStream
	if !cl.Enabled || cl.Replicas < 3 || cl.Replicas%2 == 0 {
		t.Errorf("cluster %+v: want enabled with an odd number (>= 3) of servers", cl)
	}
	if !js.Enabled || !js.FileStore.Enabled || !js.FileStore.PVC.Enabled || js.FileStore.PVC.Size == "" || js.MemoryStore.Enabled {
		t.Errorf("jetstream %+v: want file storage on a PVC only", js)
	}
	if !v.Config.Monitor.Enabled || v.Config.Monitor.Port != 8222 {
		t.Errorf("monitor %+v: KEDA reads port 8222", v.Config.Monitor)
	}
	var so scaledObject
	decode(t, find(t, render(t, kubeDir), "ScaledObject", "promptcascade-worker"), &so)
	var d appsv1.Deployment
	decode(t, find(t, render(t, kubeDir), "Deployment", "promptcascade-worker"), &d)
	w := d.Spec.Template.Spec.Containers[0]
	if r := env(w, "NATS_STREAM_REPLICAS").Value; r != fmt.Sprint(cl.Replicas) {
		t.Errorf("NATS_STREAM_REPLICAS %s, but the chart runs %d servers", r, cl.Replicas)
	}
	if !bytes.Contains(b, []byte("sync_interval: always")) {
		t.Error("JetStream does not fsync every write (sync_interval: always)")
	}
}
