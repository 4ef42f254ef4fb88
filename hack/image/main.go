// Command image writes the manager's multi-platform OCI image (`make image`) from static
// binaries built beforehand, without a container engine or a registry:
//
//	<out>/oci/                     OCI image layout: one image index, linux/amd64 + linux/arm64
//	<out>/<os>-<arch>.tar          a docker archive per platform (kind load image-archive, docker load)
//
// The image is reproducible: every timestamp is --source-date-epoch (the Makefile passes the
// commit time), so the same commit, toolchain and CA bundle give the same digest.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/openshell-operator/openshell-operator/internal/ociimage"
)

// binaryFlags collects repeated --binary platform=path flags.
type binaryFlags map[string]string

func (b binaryFlags) String() string { return fmt.Sprint(map[string]string(b)) }

func (b binaryFlags) Set(v string) error {
	platform, p, ok := strings.Cut(v, "=")
	if !ok || platform == "" || p == "" {
		return fmt.Errorf("want platform=path, got %q", v)
	}
	b[platform] = p
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run() error {
	bins := binaryFlags{}
	o := ociimage.Options{Entrypoint: "/manager", Licenses: "Apache-2.0", Title: "openshell-operator",
		Description: "Kubernetes operator for NVIDIA OpenShell agent sandboxes"}
	var (
		out   = flag.String("out", "bin/image", "output directory (replaced)")
		repo  = flag.String("repository", "ghcr.io/openshell-operator/openshell-operator", "image repository the archives and the layout name")
		epoch = flag.String("source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Unix time of every timestamp in the image (the commit time)")
	)
	flag.Var(bins, "binary", "platform=path of a static binary (repeat per platform)")
	flag.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle to ship")
	flag.StringVar(&o.Version, "version", "", "image version (the VERSION file)")
	flag.StringVar(&o.Revision, "revision", "", "git commit")
	flag.StringVar(&o.Source, "source", "https://github.com/openshell-operator/openshell-operator", "source repository URL")
	flag.Parse()
	if o.Version == "" || o.Revision == "" || *epoch == "" {
		return fmt.Errorf("--version, --revision and --source-date-epoch are required")
	}
	secs, err := strconv.ParseInt(*epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("--source-date-epoch: %w", err)
	}
	o.Created, o.Binaries = time.Unix(secs, 0).UTC(), bins

	idx, err := ociimage.Build(o)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(*repo + ":" + o.Version)
	if err != nil {
		return fmt.Errorf("image name: %w", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	layoutDir := filepath.Join(*out, "oci")
	if err := ociimage.WriteLayout(layoutDir, idx, o.Version, tag.String()); err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("image: %s@%s -> %s\n", tag, digest, layoutDir)
	for platform := range bins {
		img, err := ociimage.PlatformImage(idx, platform)
		if err != nil {
			return err
		}
		archive := filepath.Join(*out, strings.ReplaceAll(platform, "/", "-")+".tar")
		if err := tarball.WriteToFile(archive, tag, img); err != nil {
			return fmt.Errorf("write %s: %w", archive, err)
		}
		fmt.Printf("image: %s (%s) -> %s\n", tag, platform, archive)
	}
	return nil
}
