// Package image tests what `make image` ships: the multi-platform OCI layout's platforms, each
// image's config (numeric non-root user, entrypoint, OCI labels agreeing with VERSION and the
// commit) and filesystem (a static binary for the right architecture, the CA bundle, the
// passwd entry), that the binary for this machine runs and reports the version, and that the
// build is reproducible. With $IMAGE_DIR (`make test-image` sets it) it reads that build;
// otherwise it runs `make image` into a temporary directory first.
package image

import (
	"bytes"
	"crypto/x509"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/openshell-operator/openshell-operator/internal/ociimage"
)

var (
	// root is the repository root; imageDir is what `make image` wrote.
	root, imageDir string
	// version and commit are what the image must carry: the VERSION file and HEAD.
	version, commit string
	// sourceEpoch is the commit time (seconds) the image is stamped with.
	sourceEpoch string
)

// platforms are the image's platforms and the ELF machine of each binary.
var platforms = map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	var err error
	if root, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		return 0, err
	}
	v, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		return 0, err
	}
	version = strings.TrimSpace(string(v))
	// Read once: a commit made while the suite runs must not make the build and the
	// expectations disagree.
	if commit, err = output("git", "rev-parse", "HEAD"); err != nil {
		return 0, err
	}
	if sourceEpoch, err = output("git", "log", "-1", "--format=%ct", commit); err != nil {
		return 0, err
	}
	if imageDir = os.Getenv("IMAGE_DIR"); imageDir == "" {
		tmp, err := os.MkdirTemp("", "image-test-")
		if err != nil {
			return 0, err
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		imageDir = filepath.Join(tmp, "image")
		fmt.Fprintln(os.Stderr, "image: running `make image` (set IMAGE_DIR to test an existing build)")
		cmd := exec.Command("make", "--no-print-directory", "image", "IMAGE_DIR="+imageDir, "COMMIT="+commit, "SOURCE_DATE_EPOCH="+sourceEpoch)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("make image: %w", err)
		}
	}
	return m.Run(), nil
}

func output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func layoutDir() string { return filepath.Join(imageDir, "oci") }

func index(t *testing.T) v1.ImageIndex {
	t.Helper()
	idx, err := ociimage.ReadLayout(layoutDir())
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestPlatforms(t *testing.T) {
	m, err := index(t).IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range m.Manifests {
		got = append(got, d.Platform.String())
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, got); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
	if m.Annotations[ociimage.LabelVersion] != version || m.Annotations[ociimage.LabelRevision] != commit {
		t.Errorf("index annotations %v, want version %s and revision %s", m.Annotations, version, commit)
	}
}

func TestConfig(t *testing.T) {
	idx := index(t)
	for platform := range platforms {
		t.Run(platform, func(t *testing.T) {
			img, err := ociimage.PlatformImage(idx, platform)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Platform().String(); got != platform {
				t.Errorf("config platform %s", got)
			}
			if cfg.Config.User != "65532:65532" {
				t.Errorf("user %q, want the numeric 65532:65532 (runAsNonRoot needs a number)", cfg.Config.User)
			}
			if diff := cmp.Diff([]string{"/manager"}, cfg.Config.Entrypoint); diff != "" {
				t.Errorf("entrypoint (-want +got):\n%s", diff)
			}
			if len(cfg.Config.Volumes) != 0 {
				t.Errorf("volumes %v: the manager writes nothing, a read-only root needs none", cfg.Config.Volumes)
			}
			labels := cfg.Config.Labels
			for k, want := range map[string]string{
				ociimage.LabelVersion:  version,
				ociimage.LabelRevision: commit,
				ociimage.LabelSource:   "https://github.com/openshell-operator/openshell-operator",
				ociimage.LabelLicenses: "Apache-2.0",
			} {
				if labels[k] != want {
					t.Errorf("label %s = %q, want %q", k, labels[k], want)
				}
			}
			created, err := time.Parse(time.RFC3339, labels[ociimage.LabelCreated])
			if err != nil || !created.Equal(cfg.Created.Time) {
				t.Errorf("label %s = %q, config created %s", ociimage.LabelCreated, labels[ociimage.LabelCreated], cfg.Created)
			}
			// The timestamp is the commit's, not the build's: reproducible builds.
			epoch := sourceEpoch
			if want := fmt.Sprint(cfg.Created.Unix()); want != epoch {
				t.Errorf("created %s (unix %s), want the commit time %s", cfg.Created, want, epoch)
			}
		})
	}
}

func TestFilesystem(t *testing.T) {
	idx := index(t)
	for platform, machine := range platforms {
		t.Run(platform, func(t *testing.T) {
			img, err := ociimage.PlatformImage(idx, platform)
			if err != nil {
				t.Fatal(err)
			}
			h, bin, err := ociimage.File(img, "/manager")
			if err != nil {
				t.Fatal(err)
			}
			if h.Mode&0o111 == 0 || h.Uid != 0 {
				t.Errorf("/manager mode %o uid %d: want executable, owned by root (not writable by 65532)", h.Mode, h.Uid)
			}
			f, err := elf.NewFile(bytes.NewReader(bin))
			if err != nil {
				t.Fatalf("/manager is not an ELF binary: %v", err)
			}
			if f.Machine != machine {
				t.Errorf("/manager is for %s, want %s", f.Machine, machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("/manager is dynamically linked (%s): a scratch image has no libc", p.Type)
				}
			}
			_, pem, err := ociimage.File(img, ociimage.CACertsPath)
			if err != nil {
				t.Fatal(err)
			}
			if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				t.Errorf("%s holds no certificate", ociimage.CACertsPath)
			}
			_, passwd, err := ociimage.File(img, "/etc/passwd")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(passwd), ":65532:65532:") {
				t.Errorf("/etc/passwd has no entry for 65532: %q", passwd)
			}
		})
	}
}

// TestBinaryRuns extracts this machine's binary from the image, as the e2e suite does, and runs
// --version: the version, commit and date are the VERSION file's, HEAD's and the commit time.
func TestBinaryRuns(t *testing.T) {
	platform := "linux/" + runtime.GOARCH
	if _, ok := platforms[platform]; !ok || runtime.GOOS != "linux" {
		t.Skipf("the image has no binary this machine (%s/%s) runs", runtime.GOOS, runtime.GOARCH)
	}
	bin, err := ociimage.ExtractEntrypoint(layoutDir(), platform, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v: %s", bin, err, out)
	}
	epoch := sourceEpoch
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	date := time.Unix(secs, 0).UTC().Format(time.RFC3339)
	want := fmt.Sprintf("manager %s (commit %s, built %s, ", version, commit, date)
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("--version printed %q, want it to start with %q", out, want)
	}
}

// TestReproducible builds the image again from the same binaries: the digest is the same.
func TestReproducible(t *testing.T) {
	want, err := index(t).Digest()
	if err != nil {
		t.Fatal(err)
	}
	epoch := sourceEpoch
	out := t.TempDir()
	args := []string{"run", "./hack/image", "--out", out, "--version", version, "--revision", commit,
		"--source-date-epoch", epoch}
	for platform := range platforms {
		args = append(args, "--binary", platform+"="+filepath.Join(imageDir, "binaries", "manager-"+strings.ReplaceAll(platform, "/", "-")))
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./hack/image: %v: %s", err, b)
	}
	again, err := ociimage.ReadLayout(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := again.Digest(); got != want {
		t.Errorf("a second build of the same binaries has digest %s, the first %s", got, want)
	}
}
