package config_test

import (
	"testing"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/pricing"
)

// The routes file the Kubernetes manifests mount (deploy/kubernetes, a
// ConfigMap) loads as it is.
func TestDeployKubernetesRoutesLoad(t *testing.T) {
	t.Parallel()
	rt, err := config.LoadRoutes("../../deploy/kubernetes/routes.yaml", pricing.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Tiers) != 3 {
		t.Fatalf("tiers = %v, want simple, moderate and complex", rt.Tiers)
	}
	for tier, models := range rt.Tiers {
		for _, m := range models {
			if rt.Models[m].Sim == nil {
				t.Errorf("%s: %s is not simulated; the shipped file must work without keys", tier, m)
			}
		}
	}
}
