package plugin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// krewPlugin is the part of a krew Plugin manifest (krew.googlecontainertools.github.com/v1alpha2)
// the test reads.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		Homepage         string `json:"homepage"`
		ShortDescription string `json:"shortDescription"`
		Description      string `json:"description"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			Sha256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

// TestKrewManifest: plugins/openshell.yaml is a krew manifest for `kubectl openshell` with one
// platform per released os/arch, each pointing at the release archive of its version and
// naming the binary inside.
func TestKrewManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "plugins", "openshell.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m krewPlugin
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		t.Fatalf("plugins/openshell.yaml: %v", err)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "openshell" {
		t.Errorf("manifest is %s %s %q, want a krew v1alpha2 Plugin named openshell (kubectl openshell)", m.APIVersion, m.Kind, m.Metadata.Name)
	}
	if !strings.HasPrefix(m.Spec.Version, "v") || m.Spec.ShortDescription == "" || m.Spec.Homepage == "" {
		t.Errorf("version %q, shortDescription %q, homepage %q", m.Spec.Version, m.Spec.ShortDescription, m.Spec.Homepage)
	}
	seen := map[string]bool{}
	for _, p := range m.Spec.Platforms {
		os, arch := p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]
		seen[os+"/"+arch] = true
		ext, bin := "tar.gz", Name
		if os == "windows" {
			ext, bin = "zip", Name+".exe"
		}
		wantURI := fmt.Sprintf("https://github.com/openshell-operator/openshell-operator/releases/download/%s/%s_%s_%s_%s.%s",
			m.Spec.Version, Name, m.Spec.Version, os, arch, ext)
		if p.URI != wantURI {
			t.Errorf("%s/%s: uri %s, want %s", os, arch, p.URI, wantURI)
		}
		if p.Bin != bin {
			t.Errorf("%s/%s: bin %s, want %s", os, arch, p.Bin, bin)
		}
		if len(p.Sha256) != 64 {
			t.Errorf("%s/%s: sha256 %q is not 64 hex digits", os, arch, p.Sha256)
		}
	}
	for _, want := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"} {
		if !seen[want] {
			t.Errorf("no platform %s", want)
		}
	}
	if len(m.Spec.Platforms) != len(seen) {
		t.Errorf("%d platforms for %d os/arch pairs: duplicates", len(m.Spec.Platforms), len(seen))
	}
}
