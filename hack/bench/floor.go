package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// The API-server floor of the fairness row: a custom resource of the bench's own, which the
// operator does not watch, written by a bare client the way the operator writes a single
// sandbox (it sees the create on a watch, writes a finalizer, then the status), while the
// owner watches for that status. Its lag during the burst against idle is what the API server
// alone adds to those steps on this machine, with no operator work in between: a single
// sandbox cannot be Ready faster than that.
const floorGroup, floorVersion = "bench.openshell.dev", "v1"

const floorFinalizer = "bench.openshell.dev/floor"

// floor is the bare client and the owner of the floor probes in one namespace.
type floor struct {
	c   client.WithWatch
	ns  string
	gvk schema.GroupVersionKind

	// spec and status, when set, are what each probe carries: a Sandbox's, so the API server
	// validates and stores the same object a single sandbox's writes send.
	spec, status map[string]any

	mu             sync.Mutex
	created, ready map[string]time.Time
	err            error
}

// startFloor installs the CRD of kind (a bench.openshell.dev kind of its own) and starts the
// bare client's and the owner's watches of ns (which must exist). The client has no
// client-side rate limit: the floor is the API server's. With sandboxCRD (a path) the kind
// takes that CRD's schema and validation rules instead of accepting anything.
func startFloor(ctx context.Context, cfg *rest.Config, ns, kind, sandboxCRD string) (*floor, error) {
	scheme := runtime.NewScheme()
	_ = apiextensionsv1.AddToScheme(scheme)
	fcfg := ownConnection(cfg)
	fcfg.QPS = -1
	c, err := client.NewWithWatch(fcfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	gvk := schema.GroupVersionKind{Group: floorGroup, Version: floorVersion, Kind: kind}
	plural := strings.ToLower(kind) + "s"
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + floorGroup},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: floorGroup, Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Singular: strings.ToLower(kind), Kind: kind, ListKind: kind + "List"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: floorVersion, Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
	if sandboxCRD != "" {
		raw, err := os.ReadFile(sandboxCRD)
		if err != nil {
			return nil, err
		}
		sbCRD := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(raw, sbCRD); err != nil {
			return nil, err
		}
		crd.Spec.Versions = sbCRD.Spec.Versions
		for i := range crd.Spec.Versions {
			crd.Spec.Versions[i].Name = floorVersion
			crd.Spec.Versions[i].Storage = i == 0
			crd.Spec.Versions[i].AdditionalPrinterColumns = nil
		}
	}
	if err := c.Create(ctx, crd); err != nil {
		return nil, fmt.Errorf("create the %s CRD: %w", kind, err)
	}
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(crd), crd); err != nil {
			return false, err
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return nil, fmt.Errorf("the %s CRD not established: %w", kind, err)
	}
	f := &floor{c: c, ns: ns, gvk: gvk, created: map[string]time.Time{}, ready: map[string]time.Time{}}
	// Both watches start before the first probe, so none of its events is missed.
	for _, on := range []func(watch.Event, *unstructured.Unstructured){f.act, f.own} {
		w, err := f.watch(ctx)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", plural, err)
		}
		go func() {
			defer w.Stop()
			for ev := range w.ResultChan() {
				if u, ok := ev.Object.(*unstructured.Unstructured); ok {
					on(ev, u)
				}
			}
		}()
	}
	return f, nil
}

func (f *floor) watch(ctx context.Context) (watch.Interface, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(f.gvk.GroupVersion().WithKind(f.gvk.Kind + "List"))
	return f.c.Watch(ctx, list, client.InNamespace(f.ns))
}

// act is the bare client: on a new probe, its finalizer write, then its status write, each
// with the version the watch delivered (as the operator writes, with optimistic concurrency).
func (f *floor) act(ev watch.Event, u *unstructured.Unstructured) {
	if ev.Type != watch.Added {
		return
	}
	go func() {
		ctx := context.Background()
		u.SetFinalizers([]string{floorFinalizer})
		if err := f.c.Update(ctx, u); err != nil {
			f.fail(fmt.Errorf("floor %s: finalizer write: %w", u.GetName(), err))
			return
		}
		base := u.DeepCopy()
		status := map[string]any{"ready": true}
		if f.status != nil {
			status = runtime.DeepCopyJSON(f.status)
			status["observedGeneration"] = u.GetGeneration()
		}
		u.Object["status"] = status
		if err := f.c.Status().Patch(ctx, u, client.MergeFrom(base)); err != nil {
			f.fail(fmt.Errorf("floor %s: status write: %w", u.GetName(), err))
		}
	}()
}

// own is the owner: the first time it sees a probe's status, the probe is done.
func (f *floor) own(ev watch.Event, u *unstructured.Unstructured) {
	if ev.Type != watch.Modified {
		return
	}
	if _, done, _ := unstructured.NestedFieldNoCopy(u.Object, "status"); !done {
		return
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, seen := f.ready[u.GetName()]; !seen {
		f.ready[u.GetName()] = now
	}
}

func (f *floor) fail(err error) {
	fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// probe creates one Floor; its lag is from the create's return, as a single sandbox's.
func (f *floor) probe(ctx context.Context, name string) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(f.gvk)
	u.SetNamespace(f.ns)
	u.SetName(name)
	if f.spec != nil {
		u.Object["spec"] = runtime.DeepCopyJSON(f.spec)
	}
	if err := f.c.Create(ctx, u); err != nil {
		return fmt.Errorf("create floor %s: %w", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created[name] = time.Now()
	return nil
}

// lag waits for a created probe's status, or for a failed write, and returns its lag.
func (f *floor) lag(ctx context.Context, timeout time.Duration, name string) (time.Duration, error) {
	var lag time.Duration
	err := waitFor(ctx, timeout, func() (bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.err != nil {
			return false, f.err
		}
		ready, ok := f.ready[name]
		lag = max(ready.Sub(f.created[name]), 0)
		return ok, nil
	})
	if err != nil {
		return 0, fmt.Errorf("floor %s: %w", name, err)
	}
	return lag, nil
}

// startFloors starts the fairness row's two floors: a schemaless Floor in namespace "floor"
// and a SandboxFloor with the Sandbox CRD's schema (under root) in "sandbox-floor".
func startFloors(ctx context.Context, cfg *rest.Config, root string) ([]*floor, error) {
	fl, err := startFloor(ctx, cfg, "floor", "Floor", "")
	if err != nil {
		return nil, err
	}
	sfl, err := startFloor(ctx, cfg, "sandbox-floor", "SandboxFloor", filepath.Join(root, "config/crd/bases/openshell.dev_sandboxes.yaml"))
	if err != nil {
		return nil, err
	}
	return []*floor{fl, sfl}, nil
}

// carry makes each probe carry the spec and status of the Sandbox at key.
func (f *floor) carry(ctx context.Context, c client.Client, key client.ObjectKey) error {
	sb := &v1alpha1.Sandbox{}
	if err := c.Get(ctx, key, sb); err != nil {
		return err
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(sb)
	if err != nil {
		return err
	}
	f.spec, _ = u["spec"].(map[string]any)
	f.status, _ = u["status"].(map[string]any)
	return nil
}

// eachFloor returns what of runs for each floor, in order.
func eachFloor(floors []*floor, of func(*floor) ([]time.Duration, error)) ([][]time.Duration, error) {
	var out [][]time.Duration
	for _, f := range floors {
		lags, err := of(f)
		if err != nil {
			return nil, err
		}
		out = append(out, lags)
	}
	return out, nil
}

// probeEach runs n probes named prefix-0 … one after the other, each once the last is done.
func (f *floor) probeEach(ctx context.Context, timeout time.Duration, prefix string, n int) ([]time.Duration, error) {
	var out []time.Duration
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if err := f.probe(ctx, name); err != nil {
			return nil, err
		}
		lag, err := f.lag(ctx, timeout, name)
		if err != nil {
			return nil, err
		}
		out = append(out, lag)
	}
	return out, nil
}

// lags returns the lags of the probes prefix-0 … prefix-(n-1), already created.
func (f *floor) lags(ctx context.Context, timeout time.Duration, prefix string, n int) ([]time.Duration, error) {
	var out []time.Duration
	for i := range n {
		lag, err := f.lag(ctx, timeout, fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			return nil, err
		}
		out = append(out, lag)
	}
	return out, nil
}
