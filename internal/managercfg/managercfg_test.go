package managercfg

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

func TestSplitList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"team-a", []string{"team-a"}},
		{"team-b, team-a,team-b ,", []string{"team-a", "team-b"}},
	} {
		if diff := cmp.Diff(tc.want, SplitList(tc.in)); diff != "" {
			t.Errorf("SplitList(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestClusterResourceNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name, flag, pod string
		want            []string
		wantErr         string
	}{
		{name: "default", want: []string{"openshell-system"}},
		{name: "the operator's namespace", pod: "platform", want: []string{"platform"}},
		{name: "the flag wins", flag: "secrets-a,secrets-b", pod: "platform", want: []string{"secrets-a", "secrets-b"}},
		{name: "not a namespace", flag: "Bad_NS", wantErr: `"Bad_NS" is not a namespace name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ClusterResourceNamespaces(tc.flag, tc.pod)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// byObject flattens ByObject to kind -> (namespaces, label) for comparison.
func byObject(opts cache.Options) map[string]string {
	out := map[string]string{}
	for obj, bo := range opts.ByObject {
		var nss []string
		for ns := range bo.Namespaces {
			nss = append(nss, ns)
		}
		label := ""
		if bo.Label != nil {
			label = bo.Label.String()
		}
		out[kindOf(obj)] = strings.Join(SplitList(strings.Join(nss, ",")), ",") + "|" + label
	}
	return out
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *corev1.Secret:
		return "Secret"
	case *v1alpha1.SandboxPolicy:
		return "SandboxPolicy"
	case *v1alpha1.GatewayConnection:
		return "GatewayConnection"
	}
	return "unknown"
}

func TestCacheOptions(t *testing.T) {
	sel := labels.SelectorFromSet(labels.Set{"openshell.dev/operator-instance": "team-a"})
	for _, tc := range []struct {
		name          string
		scope         Scope
		wantDefault   []string
		wantByObjects map[string]string
	}{
		{name: "cluster-wide", scope: Scope{ClusterResourceNamespaces: []string{"openshell-system"}},
			wantByObjects: map[string]string{}},
		{name: "everything selector is no filter", scope: Scope{GatewayConnectionSelector: labels.Everything()},
			wantByObjects: map[string]string{}},
		{name: "namespaces: Secrets and policies also from the cluster resource namespace",
			scope:       Scope{WatchNamespaces: []string{"team-a", "team-b"}, ClusterResourceNamespaces: []string{"openshell-system"}},
			wantDefault: []string{"team-a", "team-b"},
			wantByObjects: map[string]string{
				"Secret":        "openshell-system,team-a,team-b|",
				"SandboxPolicy": "openshell-system,team-a,team-b|",
			}},
		{name: "namespaces and connection selector",
			scope: Scope{WatchNamespaces: []string{"team-a"}, ClusterResourceNamespaces: []string{"openshell-system"},
				GatewayConnectionSelector: sel},
			wantDefault: []string{"team-a"},
			wantByObjects: map[string]string{
				"Secret":            "openshell-system,team-a|",
				"SandboxPolicy":     "openshell-system,team-a|",
				"GatewayConnection": "|openshell.dev/operator-instance=team-a",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := CacheOptions(tc.scope)
			var got []string
			for ns := range opts.DefaultNamespaces {
				got = append(got, ns)
			}
			if diff := cmp.Diff(tc.wantDefault, SplitList(strings.Join(got, ","))); diff != "" {
				t.Errorf("DefaultNamespaces (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantByObjects, byObject(opts)); diff != "" {
				t.Errorf("ByObject (-want +got):\n%s", diff)
			}
			obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
			if opts.DefaultTransform == nil {
				t.Fatal("DefaultTransform is nil, want one that strips managedFields")
			}
			out, err := opts.DefaultTransform(obj)
			if err != nil {
				t.Fatalf("DefaultTransform: %v", err)
			}
			if mf := out.(*corev1.ConfigMap).ManagedFields; mf != nil {
				t.Errorf("cached object's managedFields = %v, want none", mf)
			}
		})
	}
}

func TestMetricsOptions(t *testing.T) {
	plain := MetricsOptions(":8080", false, "/certs")
	if plain.SecureServing || plain.FilterProvider != nil || plain.CertDir != "" {
		t.Errorf("insecure metrics = %+v, want plain HTTP without a filter", plain)
	}
	secure := MetricsOptions(":8443", true, "/certs")
	if !secure.SecureServing || secure.FilterProvider == nil || secure.CertDir != "/certs" || secure.BindAddress != ":8443" {
		t.Errorf("secure metrics = %+v, want HTTPS with the authn/authz filter and the cert dir", secure)
	}
}

func TestParseSelectorAndLeaseID(t *testing.T) {
	if sel, err := ParseGatewayConnectionSelector(" "); err != nil || !sel.Empty() {
		t.Errorf("empty selector = %v, %v; want everything", sel, err)
	}
	if _, err := ParseGatewayConnectionSelector("a in (b"); err == nil {
		t.Error("malformed selector accepted")
	}
	if _, err := LeaderElectionID("team-a.openshell.dev"); err != nil {
		t.Error(err)
	}
	if _, err := LeaderElectionID("Team A"); err == nil {
		t.Error("invalid lease name accepted")
	}
}
