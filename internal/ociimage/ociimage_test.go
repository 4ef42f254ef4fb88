package ociimage

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fixture writes two fake "binaries" and a CA bundle and returns options building from them.
func fixture(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return Options{
		Binaries: map[string]string{
			"linux/arm64": write("arm64", "arm64 binary"),
			"linux/amd64": write("amd64", "amd64 binary"),
		},
		Entrypoint: "/manager",
		CACerts:    write("ca.pem", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
		Created:    time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Version:    "v0.1.0", Revision: "abc123", Source: "https://example.com/src", Licenses: "Apache-2.0",
		Title: "t", Description: "d",
	}
}

func digest(t *testing.T, o Options) v1.Hash {
	t.Helper()
	idx, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBuildIsReproducible(t *testing.T) {
	o := fixture(t)
	first, second := digest(t, o), digest(t, o)
	if first != second {
		t.Fatalf("two builds of the same inputs differ: %s and %s", first, second)
	}
	// Every input that should matter does.
	changes := map[string]func(*Options){
		"created":  func(o *Options) { o.Created = o.Created.Add(time.Second) },
		"version":  func(o *Options) { o.Version = "v0.1.1" },
		"revision": func(o *Options) { o.Revision = "def456" },
		"binary": func(o *Options) {
			o.Binaries = map[string]string{"linux/amd64": o.Binaries["linux/arm64"], "linux/arm64": o.Binaries["linux/arm64"]}
		},
	}
	for name, change := range changes {
		changed := fixture(t)
		change(&changed)
		if got := digest(t, changed); got == first {
			t.Errorf("changing the %s left the digest at %s", name, got)
		}
	}
}

func TestLayoutRoundTrip(t *testing.T) {
	o := fixture(t)
	idx, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if err := WriteLayout(dir, idx, "v0.1.0", "example.com/op:v0.1.0"); err != nil {
		t.Fatal(err)
	}
	read, err := ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if got, _ := read.Digest(); got != want {
		t.Fatalf("layout holds %s, built %s", got, want)
	}
	m, err := read.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range m.Manifests {
		platforms = append(platforms, d.Platform.String())
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: media type %s", d.Platform, d.MediaType)
		}
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, platforms); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(o.Labels(), m.Annotations); diff != "" {
		t.Errorf("index annotations (-want +got):\n%s", diff)
	}

	for platform, content := range map[string]string{"linux/amd64": "amd64 binary", "linux/arm64": "arm64 binary"} {
		img, err := PlatformImage(read, platform)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Platform().String(); got != platform {
			t.Errorf("config platform %s, want %s", got, platform)
		}
		if cfg.Config.User != "65532:65532" || !cfg.Created.Equal(o.Created) {
			t.Errorf("%s: user %q created %s", platform, cfg.Config.User, cfg.Created)
		}
		h, data, err := File(img, "/manager")
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != content || h.Mode != 0o755 || h.Uid != 0 || !h.ModTime.Equal(o.Created) {
			t.Errorf("%s: /manager is %q mode %o uid %d mtime %s", platform, data, h.Mode, h.Uid, h.ModTime)
		}
		if _, _, err := File(img, "/absent"); err == nil {
			t.Errorf("%s: File found /absent", platform)
		}
		out, err := ExtractEntrypoint(dir, platform, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(out); string(got) != content {
			t.Errorf("%s: extracted %q", platform, got)
		}
	}
	if _, err := PlatformImage(read, "linux/s390x"); err == nil {
		t.Error("PlatformImage found linux/s390x")
	}
}

func TestBuildRejectsBadOptions(t *testing.T) {
	cases := map[string]func(*Options){
		"no binaries":       func(o *Options) { o.Binaries = nil },
		"relative path":     func(o *Options) { o.Entrypoint = "manager" },
		"missing CA bundle": func(o *Options) { o.CACerts = filepath.Join(t.TempDir(), "none") },
		"bad platform":      func(o *Options) { o.Binaries = map[string]string{"": o.Binaries["linux/amd64"]} },
		"missing binary":    func(o *Options) { o.Binaries = map[string]string{"linux/amd64": "/nonexistent"} },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			o := fixture(t)
			change(&o)
			if _, err := Build(o); err == nil {
				t.Fatal("Build accepted it")
			}
		})
	}
}
