// Package ociimage builds the manager's multi-platform OCI image from static binaries, without a
// container engine and without a base image from a registry (a scratch image holding CA
// certificates, passwd/group entries for the numeric non-root user and the binary), and reads
// images and files back out of the OCI image layout it writes. hack/image (`make image`) builds
// with it; test/image and the e2e suite read with it.
//
// The build is reproducible: every timestamp is Options.Created, tar entries are written in a
// fixed order with fixed owners, and gzip carries no name or time, so the same binaries, CA
// bundle and options give the same digests.
package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OCI annotation and label keys (https://github.com/opencontainers/image-spec/blob/main/annotations.md).
const (
	LabelCreated     = "org.opencontainers.image.created"
	LabelSource      = "org.opencontainers.image.source"
	LabelRevision    = "org.opencontainers.image.revision"
	LabelVersion     = "org.opencontainers.image.version"
	LabelLicenses    = "org.opencontainers.image.licenses"
	LabelTitle       = "org.opencontainers.image.title"
	LabelDescription = "org.opencontainers.image.description"
	// AnnotationRefName names the image inside an OCI layout (skopeo's oci:DIR:REF).
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// annotationContainerdName is the full image name containerd's importer gives the image.
	annotationContainerdName = "io.containerd.image.name"
)

// Paths inside the image.
const (
	// CACertsPath is where the CA bundle lands (Go's crypto/x509 looks there on Linux).
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	// NonRootUID is the numeric user and group the image runs as (distroless' "nonroot").
	NonRootUID = 65532
)

// Options describes one image build.
type Options struct {
	// Binaries maps a platform ("linux/amd64") to the path of the static binary for it.
	Binaries map[string]string
	// Entrypoint is the absolute path of the binary in the image, run as the entrypoint.
	Entrypoint string
	// CACerts is the path of a PEM CA bundle copied to CACertsPath.
	CACerts string
	// Created is every timestamp in the image (config, history, files).
	Created time.Time
	// Version, Revision, Source, Licenses, Title and Description fill the OCI labels, which are
	// also the index's annotations.
	Version, Revision, Source, Licenses, Title, Description string
}

// Labels returns the OCI labels the image carries.
func (o Options) Labels() map[string]string {
	return map[string]string{
		LabelCreated:     o.Created.UTC().Format(time.RFC3339),
		LabelSource:      o.Source,
		LabelRevision:    o.Revision,
		LabelVersion:     o.Version,
		LabelLicenses:    o.Licenses,
		LabelTitle:       o.Title,
		LabelDescription: o.Description,
	}
}

// User is the config's user: numeric, so kubelet can check runAsNonRoot without /etc/passwd.
var User = fmt.Sprintf("%d:%d", NonRootUID, NonRootUID)

// Build returns the multi-platform image index, platforms in sorted order.
func Build(o Options) (v1.ImageIndex, error) {
	if len(o.Binaries) == 0 {
		return nil, errors.New("no binaries")
	}
	if !path.IsAbs(o.Entrypoint) {
		return nil, fmt.Errorf("entrypoint %q is not an absolute path", o.Entrypoint)
	}
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	base, err := baseLayer(certs, o.Created)
	if err != nil {
		return nil, err
	}
	platforms := make([]string, 0, len(o.Binaries))
	for p := range o.Binaries {
		platforms = append(platforms, p)
	}
	slices.Sort(platforms)

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", p, err)
		}
		if plat.OS == "" || plat.Architecture == "" {
			return nil, fmt.Errorf("platform %q: want os/arch", p)
		}
		img, err := platformImage(o, *plat, base, o.Binaries[p])
		if err != nil {
			return nil, fmt.Errorf("image for %s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant}},
		})
	}
	annotated, ok := mutate.Annotations(idx, o.Labels()).(v1.ImageIndex)
	if !ok {
		return nil, errors.New("annotated index is not an image index")
	}
	return annotated, nil
}

func platformImage(o Options, plat v1.Platform, base v1.Layer, binPath string) (v1.Image, error) {
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	binLayer, err := layer(o.Created, []entry{{name: o.Entrypoint, mode: 0o755, data: bin}})
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: o.Created.UTC()}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: plat.Architecture,
		OS:           plat.OS,
		Variant:      plat.Variant,
		Created:      created,
		Config: v1.Config{
			User:       User,
			Entrypoint: []string{o.Entrypoint},
			Env:        []string{"PATH=/", "SSL_CERT_FILE=" + CACertsPath},
			WorkingDir: "/",
			Labels:     o.Labels(),
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "hack/image: CA certificates, passwd and group for 65532"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: created, CreatedBy: "hack/image: " + o.Entrypoint}},
	)
	if err != nil {
		return nil, err
	}
	return mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON), nil
}

// entry is one file or directory of a layer (a name ending in / is a directory).
type entry struct {
	name     string
	mode     int64
	uid, gid int
	data     []byte
}

// baseLayer holds what a scratch image needs for a Go TLS client running as 65532: the CA
// bundle, passwd/group entries (for tools that map the uid to a name) and its home; /tmp for
// programs that expect it (the manager writes nothing, so a read-only root is fine).
func baseLayer(certs []byte, created time.Time) (v1.Layer, error) {
	return layer(created, []entry{
		{name: "/etc/", mode: 0o755},
		{name: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "/etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "/etc/ssl/", mode: 0o755},
		{name: "/etc/ssl/certs/", mode: 0o755},
		{name: CACertsPath, mode: 0o644, data: certs},
		{name: "/home/", mode: 0o755},
		{name: "/home/nonroot/", mode: 0o700, uid: NonRootUID, gid: NonRootUID},
		{name: "/tmp/", mode: 0o1777},
	})
}

// layer writes entries, in the given order, as a gzip-compressed OCI layer.
func layer(created time.Time, entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    strings.TrimPrefix(e.name, "/"),
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: created.UTC(),
			Format:  tar.FormatPAX,
		}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}

// WriteLayout replaces dir with an OCI image layout whose index.json names idx as ref (skopeo's
// oci:DIR:REF and crane's layout push read it) and as image (containerd's importer).
func WriteLayout(dir string, idx v1.ImageIndex, ref, image string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear %s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		AnnotationRefName: ref, annotationContainerdName: image,
	})); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	return nil
}

// ReadLayout returns the one image index an OCI layout written by WriteLayout holds.
func ReadLayout(dir string) (v1.ImageIndex, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("open layout %s: %w", dir, err)
	}
	outer, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read layout %s: %w", dir, err)
	}
	m, err := outer.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read layout %s: %w", dir, err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].MediaType != types.OCIImageIndex {
		return nil, fmt.Errorf("layout %s: want exactly one image index in index.json, got %d manifests", dir, len(m.Manifests))
	}
	return outer.ImageIndex(m.Manifests[0].Digest)
}

// PlatformImage returns the image of idx for platform ("linux/amd64").
func PlatformImage(idx v1.ImageIndex, platform string) (v1.Image, error) {
	want, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.Equals(*want) {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image for %s", platform)
}

// File returns the header and content of the file at name (absolute) in img's flattened
// filesystem.
func File(img v1.Image, name string) (*tar.Header, []byte, error) {
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	want := strings.TrimPrefix(name, "/")
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%s: not in the image", name)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read image filesystem: %w", err)
		}
		if path.Clean(h.Name) != want {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", name, err)
		}
		return h, data, nil
	}
}

// ExtractEntrypoint writes the entrypoint binary of the platform's image in the layout at
// layoutDir into destDir and returns its path: what the e2e suite runs, so what ships is what
// was tested.
func ExtractEntrypoint(layoutDir, platform, destDir string) (string, error) {
	idx, err := ReadLayout(layoutDir)
	if err != nil {
		return "", err
	}
	img, err := PlatformImage(idx, platform)
	if err != nil {
		return "", err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	if len(cfg.Config.Entrypoint) == 0 {
		return "", errors.New("image has no entrypoint")
	}
	_, data, err := File(img, cfg.Config.Entrypoint[0])
	if err != nil {
		return "", err
	}
	out := filepath.Join(destDir, path.Base(cfg.Config.Entrypoint[0]))
	if err := os.WriteFile(out, data, 0o755); err != nil {
		return "", fmt.Errorf("write %s: %w", out, err)
	}
	return out, nil
}
