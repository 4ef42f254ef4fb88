package controller

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// Unit tests of reconcile branches: the kernel and a kind's steps against the fake API
// client of controller-runtime and the in-memory fakeGateway, no kube-apiserver, no network.

func unitScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeAPI is a fake API server client holding objs, with status subresources as on a real one.
func fakeAPI(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	return fake.NewClientBuilder().WithScheme(unitScheme(t)).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.Sandbox{}, &v1alpha1.Provider{}, &v1alpha1.SandboxPolicy{},
			&v1alpha1.InferenceRoute{}, &v1alpha1.GatewayConnection{}).
		Build()
}

// recordedEvent is one event a test recorder saw.
type recordedEvent struct{ Type, Reason, Message string }

// eventLog records events (type, reason, message) in order.
type eventLog struct {
	mu     sync.Mutex
	events []recordedEvent
}

func (l *eventLog) Eventf(_ runtime.Object, typ, reason, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, recordedEvent{typ, reason, fmt.Sprintf(format, args...)})
}

func (l *eventLog) reasons() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.events))
	for _, e := range l.events {
		out = append(out, e.Type+"/"+e.Reason)
	}
	return out
}

// reconcileOnce runs one reconcile of key through k and returns the object as stored after it.
func reconcileOnce[T object](t *testing.T, k *kernel[T], key types.NamespacedName) (T, ctrl.Result) {
	t.Helper()
	res, err := k.Reconcile(context.Background(), ctrl.Request{NamespacedName: key})
	if err != nil {
		t.Fatalf("reconcile %s: %v", key, err)
	}
	obj := k.New()
	if err := k.Get(context.Background(), key, obj); err != nil {
		var zero T
		if client.IgnoreNotFound(err) == nil {
			return zero, res
		}
		t.Fatalf("get %s: %v", key, err)
	}
	return obj, res
}

// conditionsOf reduces conditions to type=status/reason: message, for comparison.
func conditionsOf(conds []metav1.Condition) []string {
	out := make([]string, 0, len(conds))
	for _, c := range conds {
		out = append(out, fmt.Sprintf("%s=%s/%s: %s", c.Type, c.Status, c.Reason, c.Message))
	}
	return out
}

func keyOf(o client.Object) types.NamespacedName {
	return types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}
}

func secretOf(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// simAndClient starts a simulator over real mTLS and a gateway client of it, both stopped at
// the end of the test, and a context with the tests' 20 s budget.
func simAndClient(t *testing.T, opts gatewaysim.Options) (*gatewaysim.Simulator, *gateway.Client, context.Context) {
	t.Helper()
	certs, err := gatewaysim.GenerateCertBundle()
	if err != nil {
		t.Fatal(err)
	}
	sim := gatewaysim.New(opts)
	addr, err := sim.Start("127.0.0.1:0", certs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Stop)
	cl, err := gateway.FromCredentials(addr, certs.CACert, certs.ClientCert, certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return sim, cl, ctx
}

// createManaged creates a gateway sandbox per name, labelled as this operator's for a Sandbox
// of the same name in namespace "ns", and returns their ids by name.
func createManaged(ctx context.Context, t *testing.T, cl *gateway.Client, names ...string) map[string]string {
	t.Helper()
	ids := make(map[string]string, len(names))
	for _, name := range names {
		sb, err := cl.Sandboxes.Create(ctx, name, &openshellv1.SandboxSpec{}, map[string]string{"app.kubernetes.io/managed-by": "openshell-operator",
			"openshell.dev/namespace": "ns", "openshell.dev/name": name})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = sb.GetMetadata().GetId()
	}
	return ids
}

// numbered is prefix0 … prefix<n-1>, each number printed with format (such as "%d").
func numbered(prefix, format string, n int) []string {
	names := make([]string, n)
	for i := range n {
		names[i] = prefix + fmt.Sprintf(format, i)
	}
	return names
}

// staleCache is api read through a cache that still holds stale for stale's kind (a manager
// resuming from a pause); every other read and every write goes to api.
func staleCache[T interface {
	client.Object
	DeepCopyInto(T)
}](api client.Client, stale T) client.Client {
	return interceptor.NewClient(api.(client.WithWatch), interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if o, ok := obj.(T); ok {
				stale.DeepCopyInto(o)
				return nil
			}
			return c.Get(ctx, key, obj, opts...)
		},
	})
}
