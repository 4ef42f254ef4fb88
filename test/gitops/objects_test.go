package gitops

import (
	"time"

	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// healthCase is one status object and what Argo CD and Flux must make of it. The object is a
// typed v1alpha1 object with the conditions the operator writes; its YAML is the testdata file
// config/argocd/openshell.dev/<Kind>/testdata/<file>.yaml.
type healthCase struct {
	// file is the testdata file name without .yaml, Argo CD style (<status>_<what>).
	file string
	// obj is the object, TypeMeta set.
	obj client.Object
	// want is the Argo CD health.
	want HealthStatus
	// kstatus is what Flux computes; empty means the counterpart of want (Healthy: Current,
	// Progressing: InProgress, Degraded: Failed).
	kstatus kstatus.Status
}

// Fixed times keep the generated testdata stable.
var (
	created  = metav1.NewTime(time.Date(2026, time.May, 4, 9, 0, 0, 0, time.UTC))
	observed = metav1.NewTime(time.Date(2026, time.May, 4, 9, 0, 3, 0, time.UTC))
	deleted  = metav1.NewTime(time.Date(2026, time.May, 4, 9, 30, 0, 0, time.UTC))
)

// objectMeta is the metadata the API server and the operator leave on a live object.
func objectMeta(namespace, name, uid string, generation int64) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              name,
		Namespace:         namespace,
		UID:               types.UID(uid),
		ResourceVersion:   "4711",
		Generation:        generation,
		CreationTimestamp: created,
		Finalizers:        []string{v1alpha1.Finalizer},
	}
}

// deleting marks m as being deleted (the finalizer holds it).
func deleting(m metav1.ObjectMeta) metav1.ObjectMeta {
	m.DeletionTimestamp = &deleted
	var grace int64
	m.DeletionGracePeriodSeconds = &grace
	return m
}

// condition is one condition as the operator writes it.
func condition(t string, s metav1.ConditionStatus, generation int64, reason, message string) metav1.Condition {
	return metav1.Condition{Type: t, Status: s, ObservedGeneration: generation,
		LastTransitionTime: observed, Reason: reason, Message: message}
}

// The three shapes the operator's applyConditions (internal/controller/conditions.go) writes.

// ready is Ready=True alone.
func ready(generation int64, message string) []metav1.Condition {
	return []metav1.Condition{
		condition(v1alpha1.ConditionReady, metav1.ConditionTrue, generation, v1alpha1.ReasonReady, message),
	}
}

// reconciling is Ready=False and Reconciling=True with the same reason and message.
func reconciling(generation int64, reason, message string) []metav1.Condition {
	return []metav1.Condition{
		condition(v1alpha1.ConditionReady, metav1.ConditionFalse, generation, reason, message),
		condition(v1alpha1.ConditionReconciling, metav1.ConditionTrue, generation, reason, message),
	}
}

// stalled is Ready=False and Stalled=True with the same reason and message.
func stalled(generation int64, reason, message string) []metav1.Condition {
	return []metav1.Condition{
		condition(v1alpha1.ConditionReady, metav1.ConditionFalse, generation, reason, message),
		condition(v1alpha1.ConditionStalled, metav1.ConditionTrue, generation, reason, message),
	}
}

// common is the status every kind embeds.
func common(observedGeneration int64, conds []metav1.Condition) v1alpha1.CommonStatus {
	return v1alpha1.CommonStatus{ObservedGeneration: observedGeneration, Conditions: conds}
}

// Messages shared by several cases.
const (
	msgNoStatus = "Waiting for the operator to report status"
	msgDeleting = "Deletion in progress"
)

// msgGeneration is the message while the operator has not observed generation want.
func msgGeneration(want, got string) string {
	return "Waiting for the operator to observe generation " + want + " (status is for generation " + got + ")"
}

func gatewayConnection(generation int64, status v1alpha1.GatewayConnectionStatus) *v1alpha1.GatewayConnection {
	return &v1alpha1.GatewayConnection{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "GatewayConnection"},
		ObjectMeta: objectMeta("", "default", "4f7c2a1e-0b0d-4c53-9a43-6f0c1d2e3a01", generation),
		Spec: v1alpha1.GatewayConnectionSpec{
			Endpoint: "openshell.openshell.svc.cluster.local:8080",
			TLS: v1alpha1.GatewayTLS{
				SecretRef:  v1alpha1.NamespacedObjectReference{Namespace: "openshell", Name: "openshell-client-tls"},
				ServerName: "openshell",
			},
			Timeout: &metav1.Duration{Duration: 30 * time.Second},
		},
		Status: status,
	}
}

func gatewayConnectionCases() []healthCase {
	const (
		connected   = "connected to openshell.openshell.svc.cluster.local:8080 over mTLS"
		unreachable = "gateway openshell.openshell.svc.cluster.local:8080 is unreachable: connection refused (Unavailable)"
		expired     = `client certificate in Secret openshell/openshell-client-tls key tls.crt (CN "openshell-operator") expired at 2026-05-01T00:00:00Z`
	)
	notAfter := metav1.NewTime(time.Date(2027, time.May, 4, 0, 0, 0, 0, time.UTC))
	healthy := v1alpha1.GatewayConnectionStatus{CommonStatus: common(1, ready(1, connected)),
		GatewayVersion: "0.4.2", CertificateNotAfter: &notAfter, SettingsRevision: 3}
	return []healthCase{
		{file: "healthy", obj: gatewayConnection(1, healthy),
			want: HealthStatus{HealthHealthy, connected}},
		{file: "progressing_noStatus", obj: gatewayConnection(1, v1alpha1.GatewayConnectionStatus{}),
			want: HealthStatus{HealthProgressing, msgNoStatus}, kstatus: kstatus.CurrentStatus},
		{file: "progressing_generationNotObserved", obj: gatewayConnection(2, healthy),
			want: HealthStatus{HealthProgressing, msgGeneration("2", "1")}},
		{file: "progressing_gatewayUnavailable",
			obj: gatewayConnection(1, v1alpha1.GatewayConnectionStatus{
				CommonStatus: common(1, reconciling(1, v1alpha1.ReasonGatewayUnavailable, unreachable))}),
			want: HealthStatus{HealthProgressing, unreachable}},
		{file: "degraded_certificateExpired",
			obj: gatewayConnection(1, v1alpha1.GatewayConnectionStatus{
				CommonStatus:        common(1, stalled(1, v1alpha1.ReasonCertificateExpired, expired)),
				CertificateNotAfter: &metav1.Time{Time: time.Date(2026, time.May, 1, 0, 0, 0, 0, time.UTC)}}),
			want: HealthStatus{HealthDegraded, expired}},
	}
}

func provider(meta metav1.ObjectMeta, status v1alpha1.ProviderStatus) *v1alpha1.Provider {
	return &v1alpha1.Provider{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Provider"},
		ObjectMeta: meta,
		Spec: v1alpha1.ProviderSpec{
			GatewayRef: v1alpha1.GatewayReference{Name: v1alpha1.DefaultGatewayConnection},
			Type:       "openai",
			CredentialsSecretRef: v1alpha1.CredentialsSecretReference{
				Name: "openai-credentials", Keys: []string{"OPENAI_API_KEY"}},
			Config:         map[string]string{"base_url": "https://api.openai.com/v1"},
			DeletionPolicy: v1alpha1.DeletionPolicyDelete,
		},
		Status: status,
	}
}

func providerCases() []healthCase {
	const (
		uid        = "9b1d7c55-3f0e-4a4e-8f1c-2d9f6a7b8c02"
		inSync     = "gateway provider demo-openai-5ca09f04 is in sync"
		keyMissing = `Secret demo/openai-credentials has no key "OPENAI_API_KEY"`
		waiting    = `gateway connection is not ready: GatewayConnection "default": GatewayUnavailable`
		inUse      = "deletion waits: used by Sandbox(es) agent"
	)
	meta := func(generation int64) metav1.ObjectMeta { return objectMeta("demo", "openai", uid, generation) }
	withGateway := func(s v1alpha1.CommonStatus) v1alpha1.ProviderStatus {
		return v1alpha1.ProviderStatus{CommonStatus: s, GatewayName: "demo-openai-5ca09f04",
			ProviderID: "prv-8f3a2c", CredentialKeys: []string{"OPENAI_API_KEY"},
			CredentialsHash: "3f9a0c7de1b24c58a6e07b1d92f4c8a5e3b6d0f1a2c4e6b8d0f2a4c6e8b0d2f4"}
	}
	return []healthCase{
		{file: "healthy", obj: provider(meta(2), withGateway(common(2, ready(2, inSync)))),
			want: HealthStatus{HealthHealthy, inSync}},
		{file: "progressing_noStatus", obj: provider(meta(1), v1alpha1.ProviderStatus{}),
			want: HealthStatus{HealthProgressing, msgNoStatus}, kstatus: kstatus.CurrentStatus},
		// The user fixed the Secret reference of a stalled Provider: the old Stalled condition
		// says nothing about generation 3 yet.
		{file: "progressing_generationNotObserved",
			obj: provider(meta(3), v1alpha1.ProviderStatus{
				CommonStatus: common(2, stalled(2, v1alpha1.ReasonSecretKeyMissing, keyMissing))}),
			want: HealthStatus{HealthProgressing, msgGeneration("3", "2")}},
		{file: "progressing_dependencyNotReady",
			obj: provider(meta(1), v1alpha1.ProviderStatus{
				CommonStatus: common(1, reconciling(1, v1alpha1.ReasonDependencyNotReady, waiting))}),
			want: HealthStatus{HealthProgressing, waiting}},
		{file: "degraded_secretKeyMissing",
			obj: provider(meta(2), v1alpha1.ProviderStatus{
				CommonStatus: common(2, stalled(2, v1alpha1.ReasonSecretKeyMissing, keyMissing))}),
			want: HealthStatus{HealthDegraded, keyMissing}},
		// Deleted while Ready: the operator has not reconciled the deletion yet.
		{file: "progressing_deletionRequested", obj: provider(deleting(meta(2)), withGateway(common(2, ready(2, inSync)))),
			want: HealthStatus{HealthProgressing, msgDeleting}, kstatus: kstatus.TerminatingStatus},
		{file: "progressing_deletionInUse",
			obj:  provider(deleting(meta(2)), withGateway(common(2, reconciling(2, v1alpha1.ReasonInUse, inUse)))),
			want: HealthStatus{HealthProgressing, inUse}, kstatus: kstatus.TerminatingStatus},
	}
}

func sandboxPolicy(generation int64, status v1alpha1.SandboxPolicyStatus) *v1alpha1.SandboxPolicy {
	return &v1alpha1.SandboxPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxPolicy"},
		ObjectMeta: objectMeta("demo", "restricted", "c3e8a9f1-7d24-4b6a-9e05-1a2b3c4d5e03", generation),
		Spec: v1alpha1.SandboxPolicySpec{
			Filesystem: &v1alpha1.FilesystemPolicy{IncludeWorkdir: true,
				ReadOnly: []v1alpha1.AbsolutePath{"/usr", "/etc", "/lib"}, ReadWrite: []v1alpha1.AbsolutePath{"/sandbox", "/tmp"}},
			Landlock: &v1alpha1.LandlockPolicy{Compatibility: "best_effort"},
			Process:  &v1alpha1.ProcessPolicy{RunAsUser: "sandbox", RunAsGroup: "sandbox"},
			NetworkPolicies: map[string]v1alpha1.NetworkPolicyRule{
				"openai": {
					Endpoints: []v1alpha1.NetworkEndpoint{{Host: "api.openai.com", Port: 443, Protocol: "rest",
						Rules: []v1alpha1.L7Rule{{Allow: v1alpha1.L7Allow{Method: "POST", Path: "/v1/chat/completions"}}}}},
					Binaries: []v1alpha1.NetworkBinary{{Path: "/usr/bin/python3"}},
				},
			},
		},
		Status: status,
	}
}

func sandboxPolicyCases() []healthCase {
	const (
		hash    = "sha256:6b1f0d9e2c4a8f3b5e7d9c1a3f5b7d9e1c3a5f7b9d1e3c5a7f9b1d3e5c7a9f1b"
		loaded  = "loaded by 2 of 2 sandboxes"
		pending = "waiting for 1 of 2 sandboxes to load the policy"
		failed  = `Sandbox demo/agent failed to load the policy: landlock: filesystem path "/lib" is not accessible`
	)
	status := func(s v1alpha1.CommonStatus, counts v1alpha1.PolicyLoadCounts) v1alpha1.SandboxPolicyStatus {
		return v1alpha1.SandboxPolicyStatus{CommonStatus: s, Hash: hash, Sandboxes: counts}
	}
	return []healthCase{
		{file: "healthy",
			obj:  sandboxPolicy(1, status(common(1, ready(1, loaded)), v1alpha1.PolicyLoadCounts{Total: 2, Loaded: 2})),
			want: HealthStatus{HealthHealthy, loaded}},
		{file: "progressing_noStatus", obj: sandboxPolicy(1, v1alpha1.SandboxPolicyStatus{}),
			want: HealthStatus{HealthProgressing, msgNoStatus}, kstatus: kstatus.CurrentStatus},
		{file: "progressing_generationNotObserved",
			obj:  sandboxPolicy(2, status(common(1, ready(1, loaded)), v1alpha1.PolicyLoadCounts{Total: 2, Loaded: 2})),
			want: HealthStatus{HealthProgressing, msgGeneration("2", "1")}},
		{file: "progressing_policyPending",
			obj: sandboxPolicy(2, status(common(2, reconciling(2, v1alpha1.ReasonPolicyPending, pending)),
				v1alpha1.PolicyLoadCounts{Total: 2, Loaded: 1, Pending: 1})),
			want: HealthStatus{HealthProgressing, pending}},
		{file: "degraded_policyFailed",
			obj: sandboxPolicy(2, status(common(2, stalled(2, v1alpha1.ReasonPolicyFailed, failed)),
				v1alpha1.PolicyLoadCounts{Total: 2, Loaded: 1, Failed: 1})),
			want: HealthStatus{HealthDegraded, failed}},
	}
}

func inferenceRoute(generation int64, status v1alpha1.InferenceRouteStatus) *v1alpha1.InferenceRoute {
	verify := true
	return &v1alpha1.InferenceRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "InferenceRoute"},
		ObjectMeta: objectMeta("demo", "default", "e5f6a7b8-9c0d-4e1f-a2b3-c4d5e6f7a804", generation),
		Spec: v1alpha1.InferenceRouteSpec{
			GatewayRef:     v1alpha1.GatewayReference{Name: v1alpha1.DefaultGatewayConnection},
			Route:          "inference.local",
			ProviderRef:    v1alpha1.LocalObjectReference{Name: "openai"},
			Model:          "gpt-4o-mini",
			TimeoutSeconds: 60,
			Verify:         &verify,
		},
		Status: status,
	}
}

func inferenceRouteCases() []healthCase {
	const (
		routed   = "route inference.local serves gpt-4o-mini through provider demo-openai-5ca09f04 (version 3)"
		waiting  = `Provider demo/openai is not ready: Secret demo/openai-credentials has no key "OPENAI_API_KEY"`
		rejected = `gateway rejected the route: model "gpt-4o-mini" failed verification against https://api.openai.com/v1 (401 Unauthorized)`
	)
	healthy := v1alpha1.InferenceRouteStatus{CommonStatus: common(1, ready(1, routed)), RouteVersion: 3,
		Verified: true, ValidatedEndpoints: []string{"https://api.openai.com/v1"}}
	return []healthCase{
		{file: "healthy", obj: inferenceRoute(1, healthy),
			want: HealthStatus{HealthHealthy, routed}},
		{file: "progressing_noStatus", obj: inferenceRoute(1, v1alpha1.InferenceRouteStatus{}),
			want: HealthStatus{HealthProgressing, msgNoStatus}, kstatus: kstatus.CurrentStatus},
		{file: "progressing_generationNotObserved", obj: inferenceRoute(2, healthy),
			want: HealthStatus{HealthProgressing, msgGeneration("2", "1")}},
		{file: "progressing_dependencyNotReady",
			obj: inferenceRoute(1, v1alpha1.InferenceRouteStatus{
				CommonStatus: common(1, reconciling(1, v1alpha1.ReasonDependencyNotReady, waiting))}),
			want: HealthStatus{HealthProgressing, waiting}},
		{file: "degraded_gatewayRejected",
			obj: inferenceRoute(2, v1alpha1.InferenceRouteStatus{
				CommonStatus: common(2, stalled(2, v1alpha1.ReasonGatewayRejected, rejected)), RouteVersion: 2}),
			want: HealthStatus{HealthDegraded, rejected}},
	}
}

func sandbox(meta metav1.ObjectMeta, status v1alpha1.SandboxStatus) *v1alpha1.Sandbox {
	return &v1alpha1.Sandbox{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Sandbox"},
		ObjectMeta: meta,
		Spec: v1alpha1.SandboxSpec{
			GatewayRef:     v1alpha1.GatewayReference{Name: v1alpha1.DefaultGatewayConnection},
			Image:          "ghcr.io/nvidia/openshell-community/sandboxes/base:latest",
			LogLevel:       "info",
			Environment:    map[string]string{"AGENT_MODE": "review"},
			Providers:      []string{"openai"},
			PolicyRef:      &v1alpha1.LocalObjectReference{Name: "restricted"},
			UpdateStrategy: v1alpha1.UpdateStrategyRecreate,
			DeletionPolicy: v1alpha1.DeletionPolicyDelete,
		},
		Status: status,
	}
}

func sandboxCases() []healthCase {
	const (
		uid          = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c05"
		gatewayName  = "demo-agent-0b26afc5"
		isReady      = "the sandbox is ready"
		provisioning = "the sandbox is provisioning"
		policyWait   = "waiting for the sandbox to load policy version 3"
		policyFailed = `policy version 3 failed to load: landlock: filesystem path "/lib" is not accessible`
		onDelete     = "updateStrategy OnDelete: changes to image, environment apply when the sandbox is recreated"
		gatewayError = `container "agent" is waiting: ImagePullBackOff: Back-off pulling image "ghcr.io/nvidia/openshell-community/sandboxes/base:latest"`
		recreating   = "recreating the sandbox to apply changes"
		onGateway    = "the sandbox is being deleted on the gateway"
	)
	meta := func(generation int64) metav1.ObjectMeta { return objectMeta("demo", "agent", uid, generation) }
	status := func(s v1alpha1.CommonStatus, phase v1alpha1.SandboxPhase, policy v1alpha1.PolicyLoadStatus, version, active uint32) v1alpha1.SandboxStatus {
		return v1alpha1.SandboxStatus{CommonStatus: s, Phase: phase, SandboxID: "sbx-7d41e9", GatewayName: gatewayName,
			Policy: &v1alpha1.SandboxPolicyState{Version: version, ActiveVersion: active, Status: policy,
				Hash: "sha256:6b1f0d9e2c4a8f3b5e7d9c1a3f5b7d9e1c3a5f7b9d1e3c5a7f9b1d3e5c7a9f1b", SourceHash: "a41c9e07d3b2f518"},
			Providers: []string{"demo-openai-5ca09f04"}}
	}
	failed := status(common(4, stalled(4, v1alpha1.ReasonPolicyFailed, policyFailed)),
		v1alpha1.SandboxPhaseReady, v1alpha1.PolicyLoadFailed, 3, 2)
	failed.Policy.LoadError = `landlock: filesystem path "/lib" is not accessible`
	return []healthCase{
		{file: "healthy",
			obj: sandbox(meta(3), status(common(3, ready(3, isReady)),
				v1alpha1.SandboxPhaseReady, v1alpha1.PolicyLoadLoaded, 2, 2)),
			want: HealthStatus{HealthHealthy, isReady}},
		{file: "progressing_noStatus", obj: sandbox(meta(1), v1alpha1.SandboxStatus{}),
			want: HealthStatus{HealthProgressing, msgNoStatus}, kstatus: kstatus.CurrentStatus},
		{file: "progressing_generationNotObserved",
			obj: sandbox(meta(4), status(common(3, ready(3, isReady)),
				v1alpha1.SandboxPhaseReady, v1alpha1.PolicyLoadLoaded, 2, 2)),
			want: HealthStatus{HealthProgressing, msgGeneration("4", "3")}},
		{file: "progressing_provisioning",
			obj: sandbox(meta(1), status(common(1, reconciling(1, v1alpha1.ReasonProvisioning, provisioning)),
				v1alpha1.SandboxPhaseProvisioning, v1alpha1.PolicyLoadPending, 1, 0)),
			want: HealthStatus{HealthProgressing, provisioning}},
		{file: "progressing_policyPending",
			obj: sandbox(meta(4), status(common(4, reconciling(4, v1alpha1.ReasonPolicyPending, policyWait)),
				v1alpha1.SandboxPhaseReady, v1alpha1.PolicyLoadPending, 3, 2)),
			want: HealthStatus{HealthProgressing, policyWait}},
		{file: "progressing_recreating",
			obj: sandbox(meta(5), status(common(5, reconciling(5, v1alpha1.ReasonRecreating, recreating)),
				v1alpha1.SandboxPhaseDeleting, v1alpha1.PolicyLoadLoaded, 2, 2)),
			want: HealthStatus{HealthProgressing, recreating}},
		{file: "progressing_deleting",
			obj: sandbox(deleting(meta(3)), status(common(3, reconciling(3, v1alpha1.ReasonDeleting, onGateway)),
				v1alpha1.SandboxPhaseDeleting, v1alpha1.PolicyLoadLoaded, 2, 2)),
			want: HealthStatus{HealthProgressing, onGateway}, kstatus: kstatus.TerminatingStatus},
		{file: "progressing_deletionRequested",
			obj: sandbox(deleting(meta(3)), status(common(3, ready(3, isReady)),
				v1alpha1.SandboxPhaseReady, v1alpha1.PolicyLoadLoaded, 2, 2)),
			want: HealthStatus{HealthProgressing, msgDeleting}, kstatus: kstatus.TerminatingStatus},
		{file: "degraded_policyFailed", obj: sandbox(meta(4), failed),
			want: HealthStatus{HealthDegraded, policyFailed}},
		{file: "degraded_recreatePending",
			obj: sandbox(meta(5), status(common(5, stalled(5, v1alpha1.ReasonRecreatePending, onDelete)),
				v1alpha1.SandboxPhaseReady, v1alpha1.PolicyLoadLoaded, 2, 2)),
			want: HealthStatus{HealthDegraded, onDelete}},
		// The operator keeps retrying (Reconciling: the gateway recomputes ERROR and it can
		// recover), so Flux waits; Argo CD shows the error as Degraded.
		{file: "degraded_phaseError",
			obj: sandbox(meta(1), status(common(1, reconciling(1, v1alpha1.ReasonSandboxError, gatewayError)),
				v1alpha1.SandboxPhaseError, v1alpha1.PolicyLoadPending, 1, 0)),
			want: HealthStatus{HealthDegraded, gatewayError}, kstatus: kstatus.InProgressStatus},
	}
}

func policyProposal(meta metav1.ObjectMeta, spec v1alpha1.PolicyProposalSpec, status v1alpha1.PolicyProposalStatus) *v1alpha1.PolicyProposal {
	spec.SandboxRef = v1alpha1.LocalObjectReference{Name: "agent"}
	spec.ChunkID = "7c1e2f0a-5b3d-4e8f-9a6b-0c1d2e3f4a5b"
	if spec.Decision == "" {
		spec.Decision = v1alpha1.ProposalPending
	}
	meta.Labels = map[string]string{v1alpha1.LabelSandbox: "agent"}
	meta.Finalizers = nil
	return &v1alpha1.PolicyProposal{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PolicyProposal"},
		ObjectMeta: meta,
		Spec:       spec,
		Status:     status,
	}
}

func policyProposalCases() []healthCase {
	const (
		uid          = "5e2d8c41-9a7b-4f3e-8d1c-6b0a2f4e7c05"
		awaiting     = "Waiting for a reviewer's decision"
		mirrored     = "chunk 7c1e2f0a-5b3d-4e8f-9a6b-0c1d2e3f4a5b is pending on the gateway"
		applied      = "approved on the gateway: policy version 4"
		rejected     = "rejected on the gateway: use the internal mirror"
		superseded   = "superseded by chunk 9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"
		globalPolicy = "approve: policy is managed globally; delete global policy before sandbox policy update"
		badRule      = "edit: merge_operations[0]: host 169.254.169.254 is always blocked"
	)
	meta := func(generation int64) metav1.ObjectMeta { return objectMeta("demo", "agent-7c1e2f0a", uid, generation) }
	rule := &v1alpha1.NetworkPolicyRule{Name: "allow_api_github_com", Endpoints: []v1alpha1.NetworkEndpoint{{Host: "api.github.com", Port: 443}},
		Binaries: []v1alpha1.NetworkBinary{{Path: "/usr/bin/curl"}}}
	chunk := func(s v1alpha1.CommonStatus, gw v1alpha1.ChunkStatus) v1alpha1.PolicyProposalStatus {
		return v1alpha1.PolicyProposalStatus{CommonStatus: s, RuleName: "allow_api_github_com", ProposedRule: rule,
			Host: "api.github.com", Port: 443, Endpoint: "api.github.com:443", Binary: "/usr/bin/curl",
			Rationale: "observed denied connection", ConfidencePercent: 90, HitCount: 3, FirstSeen: &created, LastSeen: &observed,
			GatewayStatus: gw, RequiredApprovals: 1}
	}
	approved := v1alpha1.PolicyProposalSpec{Decision: v1alpha1.ProposalApproved,
		Approvals: []v1alpha1.ProposalApproval{{User: "alice@example.com", Time: observed}}}
	done := chunk(common(2, ready(2, applied)), v1alpha1.ChunkApproved)
	done.Outcome = &v1alpha1.ProposalOutcome{Decision: v1alpha1.ProposalApproved, Generation: 2, PolicyVersion: 4, PolicyHash: "sha256:2f4e", Time: &observed}
	quorum := chunk(common(2, ready(2, "1 of 2 approvals")), v1alpha1.ChunkPending)
	quorum.RequiredApprovals = 2
	old := chunk(common(1, ready(1, superseded)), v1alpha1.ChunkRejected)
	old.SupersededBy, old.RejectionReason = "9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a", superseded
	return []healthCase{
		{file: "healthy", obj: policyProposal(meta(2), approved, done),
			want: HealthStatus{HealthHealthy, applied}},
		{file: "healthy_rejected",
			obj: policyProposal(meta(2), v1alpha1.PolicyProposalSpec{Decision: v1alpha1.ProposalRejected, Reason: "use the internal mirror"},
				chunk(common(2, ready(2, rejected)), v1alpha1.ChunkRejected)),
			want: HealthStatus{HealthHealthy, rejected}},
		// Superseded while nobody decided: nothing left to decide.
		{file: "healthy_superseded", obj: policyProposal(meta(1), v1alpha1.PolicyProposalSpec{}, old),
			want: HealthStatus{HealthHealthy, superseded}},
		{file: "suspended_awaitingDecision",
			obj:  policyProposal(meta(1), v1alpha1.PolicyProposalSpec{}, chunk(common(1, ready(1, mirrored)), v1alpha1.ChunkPending)),
			want: HealthStatus{HealthSuspended, awaiting}, kstatus: kstatus.CurrentStatus},
		{file: "suspended_awaitingQuorum", obj: policyProposal(meta(2), approved, quorum),
			want: HealthStatus{HealthSuspended, "Waiting for approvals: 1 of 2"}, kstatus: kstatus.CurrentStatus},
		{file: "progressing_noStatus", obj: policyProposal(meta(1), v1alpha1.PolicyProposalSpec{}, v1alpha1.PolicyProposalStatus{}),
			want: HealthStatus{HealthProgressing, msgNoStatus}, kstatus: kstatus.CurrentStatus},
		// A reviewer just approved: the status still shows the undecided chunk.
		{file: "progressing_generationNotObserved",
			obj:  policyProposal(meta(2), approved, chunk(common(1, ready(1, mirrored)), v1alpha1.ChunkPending)),
			want: HealthStatus{HealthProgressing, msgGeneration("2", "1")}},
		{file: "progressing_globalPolicyActive",
			obj: policyProposal(meta(2), approved,
				chunk(common(2, reconciling(2, v1alpha1.ReasonGlobalPolicyActive, globalPolicy)), v1alpha1.ChunkPending)),
			want: HealthStatus{HealthProgressing, globalPolicy}},
		{file: "progressing_deletionRequested", obj: policyProposal(deleting(meta(2)), approved, done),
			want: HealthStatus{HealthProgressing, msgDeleting}, kstatus: kstatus.TerminatingStatus},
		{file: "degraded_gatewayRejected",
			obj: policyProposal(meta(3), approved,
				chunk(common(3, stalled(3, v1alpha1.ReasonGatewayRejected, badRule)), v1alpha1.ChunkPending)),
			want: HealthStatus{HealthDegraded, badRule}},
	}
}

// allCases is every case of every kind, by kind.
func allCases() map[string][]healthCase {
	return map[string][]healthCase{
		"GatewayConnection": gatewayConnectionCases(),
		"Provider":          providerCases(),
		"Sandbox":           sandboxCases(),
		"SandboxPolicy":     sandboxPolicyCases(),
		"InferenceRoute":    inferenceRouteCases(),
		"PolicyProposal":    policyProposalCases(),
	}
}

// edgeCases are condition sets this operator does not write (applyConditions keeps Ready,
// Reconciling and Stalled exclusive, and always sets a message) but the kstatus contract
// allows; the checks must still read them the kstatus way. They are not testdata.
func edgeCases(kind string) []healthCase {
	const applying = "applying generation 1"
	obj := func(conds ...metav1.Condition) client.Object {
		s := common(1, conds)
		switch kind {
		case "GatewayConnection":
			return gatewayConnection(1, v1alpha1.GatewayConnectionStatus{CommonStatus: s})
		case "Provider":
			return provider(objectMeta("demo", "openai", "edge", 1), v1alpha1.ProviderStatus{CommonStatus: s})
		case "Sandbox":
			return sandbox(objectMeta("demo", "agent", "edge", 1), v1alpha1.SandboxStatus{CommonStatus: s})
		case "SandboxPolicy":
			return sandboxPolicy(1, v1alpha1.SandboxPolicyStatus{CommonStatus: s})
		case "InferenceRoute":
			return inferenceRoute(1, v1alpha1.InferenceRouteStatus{CommonStatus: s})
		case "PolicyProposal":
			return policyProposal(objectMeta("demo", "agent-7c1e2f0a", "edge", 1),
				v1alpha1.PolicyProposalSpec{Decision: v1alpha1.ProposalRejected, Reason: "no"}, v1alpha1.PolicyProposalStatus{CommonStatus: s})
		}
		panic("unknown kind " + kind)
	}
	readyTrue := condition(v1alpha1.ConditionReady, metav1.ConditionTrue, 1, v1alpha1.ReasonReady, "ready")
	return []healthCase{
		{file: "readyAndReconciling",
			obj: obj(readyTrue, condition(v1alpha1.ConditionReconciling, metav1.ConditionTrue, 1,
				v1alpha1.ReasonProgressing, applying)),
			want: HealthStatus{HealthProgressing, applying}},
		{file: "readyAndStalled",
			obj: obj(readyTrue, condition(v1alpha1.ConditionStalled, metav1.ConditionTrue, 1,
				v1alpha1.ReasonInvalidSpec, "invalid")),
			want: HealthStatus{HealthDegraded, "invalid"}},
		{file: "noConditions", obj: obj(),
			want: HealthStatus{HealthProgressing, "Waiting for the Ready condition"}},
		{file: "readyUnknownWithoutMessage",
			obj:  obj(condition(v1alpha1.ConditionReady, metav1.ConditionUnknown, 1, v1alpha1.ReasonProgressing, "")),
			want: HealthStatus{HealthProgressing, v1alpha1.ReasonProgressing}},
		{file: "stalledWithoutMessage",
			obj: obj(condition(v1alpha1.ConditionReady, metav1.ConditionFalse, 1, v1alpha1.ReasonSecretNotFound, ""),
				condition(v1alpha1.ConditionStalled, metav1.ConditionTrue, 1, v1alpha1.ReasonSecretNotFound, "")),
			want: HealthStatus{HealthDegraded, v1alpha1.ReasonSecretNotFound}},
		{file: "reconcilingFalse",
			obj: obj(readyTrue, condition(v1alpha1.ConditionReconciling, metav1.ConditionFalse, 1,
				v1alpha1.ReasonReady, "")),
			want: HealthStatus{HealthHealthy, "ready"}},
	}
}
