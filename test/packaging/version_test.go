package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// imageRepository is the image every manifest names.
const imageRepository = "ghcr.io/openshell-operator/openshell-operator"

// semver is a v-prefixed semantic version, as VERSION and release tags hold it.
var semver = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$`)

// projectVersion is the VERSION file, the one version source.
func projectVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimSpace(string(b))
	if !semver.MatchString(v) {
		t.Fatalf("VERSION %q is not a v-prefixed semantic version", v)
	}
	return v
}

// managerImage is the manager container's image in a render.
func managerImage(t *testing.T, r rendered) string {
	t.Helper()
	var d appsv1.Deployment
	r.one(t, "Deployment", &d)
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == managerContainer {
			return c.Image
		}
	}
	t.Fatalf("no %s container", managerContainer)
	return ""
}

// TestVersionsAgree checks that the chart, the kustomize image tag, the changelog, the krew
// manifest and the binaries (manager, simulator, kubectl plugin) all carry the VERSION file's
// version.
func TestVersionsAgree(t *testing.T) {
	version := projectVersion(t)

	t.Run("Chart.yaml", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ Version, AppVersion string }
		if err := yaml.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		if c.Version != strings.TrimPrefix(version, "v") || c.AppVersion != version {
			t.Errorf("Chart.yaml version %q appVersion %q, want %q and %q (VERSION)", c.Version, c.AppVersion,
				strings.TrimPrefix(version, "v"), version)
		}
		objs, err := helmTemplate("openshell-system", nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := managerImage(t, rendered{objs: objs}), imageRepository+":"+version; got != want {
			t.Errorf("the chart runs %s, want %s", got, want)
		}
	})

	t.Run("kustomize", func(t *testing.T) {
		objs, err := kustomizeBuild("config/default")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := managerImage(t, rendered{objs: objs}), imageRepository+":"+version; got != want {
			t.Errorf("config/default runs %s, want %s (config/manager/kustomization.yaml images newTag)", got, want)
		}
	})

	t.Run("CHANGELOG.md", func(t *testing.T) {
		notes, err := run(filepath.Join(root, "hack", "release-notes.sh"), version)
		if err != nil {
			t.Fatalf("no release notes for %s: %v", version, err)
		}
		if !strings.Contains(string(notes), "### ") {
			t.Errorf("release notes for %s have no Keep a Changelog subsection (### Added, ...):\n%s", version, notes)
		}
		if _, err := run(filepath.Join(root, "hack", "release-notes.sh"), "--check-tag", version); err != nil {
			t.Errorf("the release check refuses the VERSION tag: %v", err)
		}
		if _, err := run(filepath.Join(root, "hack", "release-notes.sh"), "--check-tag", version+"-other"); err == nil {
			t.Errorf("the release check accepts a tag other than VERSION")
		}
	})

	t.Run("plugins/openshell.yaml", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(root, "plugins", "openshell.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Spec struct {
				Version   string
				Platforms []struct{ URI string }
			}
		}
		if err := yaml.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Spec.Version != version {
			t.Errorf("the krew manifest is for %s, want %s (VERSION)", m.Spec.Version, version)
		}
		for _, p := range m.Spec.Platforms {
			if !strings.Contains(p.URI, "/download/"+version+"/kubectl-openshell_"+version+"_") {
				t.Errorf("krew platform URI %s is not of release %s", p.URI, version)
			}
		}
	})

	// The binaries, built with the Makefile's -ldflags (as `make build`, `make image`), report
	// the version, the commit and the commit time.
	ldflags, err := run("make", "--no-print-directory", "-s", "print-ldflags")
	if err != nil {
		t.Fatal(err)
	}
	commit, err := run("git", "rev-parse", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, pkg := range map[string]string{"manager": "./cmd", "gatewaysim": "./cmd/gatewaysim", "kubectl-openshell": "./cmd/kubectl-openshell"} {
		t.Run(name, func(t *testing.T) {
			bin := filepath.Join(dir, name)
			if _, err := run("go", "build", "-ldflags", strings.TrimSpace(string(ldflags)), "-o", bin, pkg); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v: %s", name, err, out)
			}
			want := name + " " + version + " (commit " + strings.TrimSpace(string(commit)) + ", built "
			if !strings.HasPrefix(string(out), want) {
				t.Errorf("%s --version printed %q, want it to start with %q", name, out, want)
			}
		})
	}
}
