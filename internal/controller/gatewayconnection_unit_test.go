package controller

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// fakeRegistry is the connection registry double of the GatewayConnection kind: ensure hands
// out the fake gateway, and readiness is recorded for the test to read.
type fakeRegistry struct {
	gw      *fakeGateway
	dialErr error
	ready   map[string]bool
}

func (f *fakeRegistry) ensure(string, connectionConfig) (gatewayAPI, error) {
	if f.dialErr != nil {
		return gatewayAPI{}, f.dialErr
	}
	return f.gw.api(), nil
}
func (f *fakeRegistry) setReady(name string, ready bool, _ string) { f.ready[name] = ready }
func (f *fakeRegistry) markNotReady(name, _ string)                { f.ready[name] = false }
func (f *fakeRegistry) remove(name string)                         { delete(f.ready, name) }

func TestGatewayConnectionBranches(t *testing.T) {
	certs, err := gatewaysim.GenerateCertBundle()
	if err != nil {
		t.Fatal(err)
	}
	tlsSecret := secretOf("openshell-system", "client-tls", map[string]string{
		"ca.crt": string(certs.CACert), "tls.crt": string(certs.ClientCert), "tls.key": string(certs.ClientKey)})
	gc := func(mut ...func(*v1alpha1.GatewayConnection)) *v1alpha1.GatewayConnection {
		o := &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 1},
			Spec: v1alpha1.GatewayConnectionSpec{Endpoint: "gw.example:8443",
				TLS: v1alpha1.GatewayTLS{SecretRef: v1alpha1.NamespacedObjectReference{Namespace: "openshell-system", Name: "client-tls"}}}}
		for _, m := range mut {
			m(o)
		}
		return o
	}
	type want struct {
		Conditions []string
		Ready      map[string]bool
		Requeue    time.Duration
		Version    string
	}
	on := true
	tests := []struct {
		name    string
		obj     *v1alpha1.GatewayConnection
		objs    []client.Object
		prepare func(*fakeRegistry)
		want    want
	}{
		{name: "probes Health and is Ready", obj: gc(), objs: []client.Object{tlsSecret},
			want: want{Conditions: []string{"Ready=True/Ready: connected to gw.example:8443 over mTLS"}, Ready: map[string]bool{"default": true},
				Requeue: 30 * time.Second, Version: "fake-1"}},
		{name: "a missing TLS Secret stalls and marks the connection not ready", obj: gc(),
			want: want{Conditions: []string{"Ready=False/SecretNotFound: Secret openshell-system/client-tls not found",
				"Stalled=True/SecretNotFound: Secret openshell-system/client-tls not found"}, Ready: map[string]bool{"default": false}}},
		{name: "an unreachable gateway backs off", obj: gc(), objs: []client.Object{tlsSecret},
			prepare: func(r *fakeRegistry) { r.gw.errs["Health"] = status.Error(codes.Unavailable, "connection refused") },
			want: want{Conditions: []string{"Ready=False/GatewayUnavailable: gateway gw.example:8443 is unreachable: connection refused (Unavailable)",
				"Reconciling=True/GatewayUnavailable: gateway gw.example:8443 is unreachable: connection refused (Unavailable)"},
				Ready: map[string]bool{"default": false}, Requeue: defaultBackoffBase}},
		{name: "a certificate the client cannot load stalls", obj: gc(), objs: []client.Object{tlsSecret},
			prepare: func(r *fakeRegistry) { r.dialErr = errors.New("tls: private key does not match public key") },
			want: want{Conditions: []string{"Ready=False/CertificateInvalid: tls: private key does not match public key",
				"Stalled=True/CertificateInvalid: tls: private key does not match public key"}, Ready: map[string]bool{"default": false}}},
		{name: "a refused setting is reported, the connection stays usable",
			obj: gc(func(o *v1alpha1.GatewayConnection) {
				o.Spec.Settings = map[string]v1alpha1.SettingValue{"ocsf_json_enabled": {Bool: &on}}
			}),
			objs: []client.Object{tlsSecret},
			prepare: func(r *fakeRegistry) {
				r.gw.errs["Policies.SetSetting"] = status.Error(codes.InvalidArgument, "unknown setting")
			},
			want: want{Conditions: []string{`Ready=False/GatewayRejected: setting "ocsf_json_enabled": unknown setting (InvalidArgument)`,
				`Stalled=True/GatewayRejected: setting "ocsf_json_enabled": unknown setting (InvalidArgument)`},
				Ready: map[string]bool{"default": true}, Version: "fake-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := &fakeRegistry{gw: newFakeGateway(), ready: map[string]bool{}}
			if tt.prepare != nil {
				tt.prepare(reg)
			}
			c := fakeAPI(t, append(tt.objs, tt.obj)...)
			r := &GatewayConnectionReconciler{Client: c, Connections: reg, Recorder: &eventLog{}}
			k := newKernel(c, kindGatewayConnection, func() *v1alpha1.GatewayConnection { return &v1alpha1.GatewayConnection{} },
				kindSteps[*v1alpha1.GatewayConnection](r), nil, false, Backoff{}, 0)
			got, res := reconcileOnce(t, k, keyOf(tt.obj))
			if diff := cmp.Diff(tt.want, want{Conditions: conditionsOf(got.Status.Conditions), Ready: reg.ready,
				Requeue: res.RequeueAfter, Version: got.Status.GatewayVersion}); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}
