package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UpdateStrategy says how spec changes the gateway cannot apply in place are rolled out.
// +kubebuilder:validation:Enum=Recreate;OnDelete
type UpdateStrategy string

// Update strategies.
const (
	// UpdateStrategyRecreate deletes the gateway sandbox, waits until it is gone and creates
	// it again with the new spec.
	UpdateStrategyRecreate UpdateStrategy = "Recreate"
	// UpdateStrategyOnDelete leaves the running sandbox alone and reports RecreatePending;
	// the change applies when the user deletes it.
	UpdateStrategyOnDelete UpdateStrategy = "OnDelete"
)

// LabelValue is a Kubernetes label value: empty, or at most 63 alphanumerics, '-', '_' or
// '.', starting and ending with an alphanumeric.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
type LabelValue string

// SandboxSpec is an OpenShell agent sandbox.
// +kubebuilder:validation:XValidation:rule="!(has(self.policyRef) && has(self.policy))",message="policyRef and policy are mutually exclusive"
// +kubebuilder:validation:XValidation:rule="!has(self.gpuDevice) || (has(self.gpu) && self.gpu)",message="gpuDevice requires gpu: true"
type SandboxSpec struct {
	// GatewayRef names the GatewayConnection; it cannot change after creation.
	// +kubebuilder:default={name: default}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="gatewayRef is immutable"
	// +optional
	GatewayRef GatewayReference `json:"gatewayRef,omitempty"`
	// Image is the OCI image the sandbox boots; the gateway's default image when empty. It
	// must be an image reference as container runtimes parse it (the grammar of
	// github.com/distribution/reference): [registry[:port]/]path[:tag][@digest], with
	// lowercase path components, a tag of at most 128 letters, digits, '_', '.' and '-' (not
	// starting with '.' or '-'), and a sha256, sha384 or sha512 digest in lowercase hex of
	// the algorithm's length.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^(?:(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:[.](?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]*:[a-fA-F0-9:]*\])(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}))?$')`,message="image must be an OCI image reference: [registry[:port]/]path[:tag][@digest] with a lowercase path, for example ghcr.io/example/agent:1.2 or busybox@sha256:<64 hex digits>"
	// Runtimes limit the repository path (the name without registry, tag and digest) to 255
	// characters after normalising it: a one-component name on Docker Hub gains library/.
	// +kubebuilder:validation:XValidation:rule="!self.find('^(?:[^/@]+/)*[^:/@]+').contains('/') ? size(self.find('^(?:[^/@]+/)*[^:/@]+')) + 8 <= 255 : (self.find('^[^/@]+').matches('^[a-z0-9_-]+$') && self.find('^[^/@]+') != 'localhost') ? size(self.find('^(?:[^/@]+/)*[^:/@]+')) <= 255 : size(self.find('^(?:[^/@]+/)*[^:/@]+')) - size(self.find('^[^/@]+')) - 1 + (self.find('^(?:[^/@]+/)*[^:/@]+').matches('^(index[.])?docker[.]io/[^/]+$') ? 8 : 0) <= 255",message="image repository path (without registry, tag and digest; library/ is added to a one-component Docker Hub name) must be at most 255 characters"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-f0-9]{64}$')",message="image must be a reference, not a 64-character image ID"
	// +optional
	Image string `json:"image,omitempty"`
	// Environment variables for processes in the sandbox. The variables the gateway sets
	// itself (OPENSHELL_SANDBOX_ID, OPENSHELL_ENDPOINT, OPENSHELL_TLS_*...) always win, so
	// they are refused here.
	// +kubebuilder:validation:MaxProperties=128
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$') && size(k) <= 256)",message="environment keys must be environment variable names of at most 256 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(self[k]) <= 8192)",message="environment values must be at most 8192 bytes"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['OPENSHELL_SANDBOX_ID', 'OPENSHELL_SANDBOX', 'OPENSHELL_ENDPOINT', 'OPENSHELL_SANDBOX_COMMAND', 'OPENSHELL_SSH_SOCKET_PATH', 'OPENSHELL_TLS_CA', 'OPENSHELL_TLS_CERT', 'OPENSHELL_TLS_KEY', 'OPENSHELL_K8S_SA_TOKEN_FILE']))",message="environment must not set variables the gateway sets itself (OPENSHELL_SANDBOX_ID, OPENSHELL_SANDBOX, OPENSHELL_ENDPOINT, OPENSHELL_SANDBOX_COMMAND, OPENSHELL_SSH_SOCKET_PATH, OPENSHELL_TLS_CA, OPENSHELL_TLS_CERT, OPENSHELL_TLS_KEY, OPENSHELL_K8S_SA_TOKEN_FILE)"
	// +optional
	Environment map[string]string `json:"environment,omitempty"`
	// LogLevel of processes in the sandbox.
	// +kubebuilder:validation:Enum=trace;debug;info;warn;error
	// +optional
	LogLevel string `json:"logLevel,omitempty"`
	// GPU requests an NVIDIA GPU.
	// +optional
	GPU bool `json:"gpu,omitempty"`
	// GPUDevice pins a GPU by PCI address (0000:2d:00.0) or index (0); requires gpu.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+|[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])$`
	// +optional
	GPUDevice string `json:"gpuDevice,omitempty"`
	// RuntimeClassName for the sandbox pod (for example kata or gvisor).
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	RuntimeClassName string `json:"runtimeClassName,omitempty"`
	// Resources of the sandbox container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// PodLabels are added to the sandbox pod; keys and values follow the Kubernetes label
	// syntax.
	// +kubebuilder:validation:MaxProperties=128
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$') && (!k.contains('/') || size(k.split('/')[0]) <= 253))",message="podLabels keys must be label keys: an optional DNS subdomain prefix and '/', then 1-63 alphanumerics, '-', '_' or '.'"
	// +optional
	PodLabels map[string]LabelValue `json:"podLabels,omitempty"`
	// PodAnnotations are added to the sandbox pod; keys follow the Kubernetes annotation key
	// syntax (that of label keys).
	// +kubebuilder:validation:MaxProperties=128
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$') && (!k.contains('/') || size(k.split('/')[0]) <= 253))",message="podAnnotations keys must be annotation keys: an optional DNS subdomain prefix and '/', then 1-63 alphanumerics, '-', '_' or '.'"
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`
	// Providers are names of Providers in the same namespace to attach; attaching and
	// detaching happens in place.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +listType=set
	// +optional
	Providers []string `json:"providers,omitempty"`
	// PolicyRef names a SandboxPolicy in the same namespace. Exclusive with policy.
	// +optional
	PolicyRef *LocalObjectReference `json:"policyRef,omitempty"`
	// Policy is an inline policy. Exclusive with policyRef.
	// +optional
	Policy *SandboxPolicySpec `json:"policy,omitempty"`
	// UpdateStrategy for changes the gateway cannot apply in place (image, environment,
	// resources, landlock, process, removed paths...).
	// +kubebuilder:default=Recreate
	// +optional
	UpdateStrategy UpdateStrategy `json:"updateStrategy,omitempty"`
	// DeletionPolicy: Delete removes the gateway sandbox with this resource, Orphan leaves it.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// SandboxPhase is the gateway's lifecycle phase.
// +kubebuilder:validation:Enum=Provisioning;Ready;Error;Deleting;Unknown
type SandboxPhase string

// Sandbox phases, as the gateway reports them.
const (
	SandboxPhaseProvisioning SandboxPhase = "Provisioning"
	SandboxPhaseReady        SandboxPhase = "Ready"
	SandboxPhaseError        SandboxPhase = "Error"
	SandboxPhaseDeleting     SandboxPhase = "Deleting"
	SandboxPhaseUnknown      SandboxPhase = "Unknown"
)

// PolicyLoadStatus is the gateway's status of a policy revision.
// +kubebuilder:validation:Enum=Pending;Loaded;Failed;Superseded
type PolicyLoadStatus string

// Policy load statuses.
const (
	PolicyLoadPending    PolicyLoadStatus = "Pending"
	PolicyLoadLoaded     PolicyLoadStatus = "Loaded"
	PolicyLoadFailed     PolicyLoadStatus = "Failed"
	PolicyLoadSuperseded PolicyLoadStatus = "Superseded"
)

// SandboxPolicyState is the policy revision the gateway holds for the sandbox.
type SandboxPolicyState struct {
	// Version is the newest revision pushed.
	// +optional
	Version uint32 `json:"version,omitempty"`
	// ActiveVersion is the revision the sandbox reported loaded.
	// +optional
	ActiveVersion uint32 `json:"activeVersion,omitempty"`
	// Status of the newest revision.
	// +optional
	Status PolicyLoadStatus `json:"status,omitempty"`
	// Hash of the newest revision, as the gateway computed it.
	// +optional
	Hash string `json:"hash,omitempty"`
	// LoadError is the sandbox's error when loading failed.
	// +optional
	LoadError string `json:"loadError,omitempty"`
	// SourceHash is the operator's canonical hash of the policy the sandbox runs or was last
	// sent (equal to the referenced SandboxPolicy's status.hash once it caught up).
	// +optional
	SourceHash string `json:"sourceHash,omitempty"`
	// GlobalPolicyVersion is set while the gateway applies a global policy to every sandbox,
	// overriding this one's.
	// +optional
	GlobalPolicyVersion uint32 `json:"globalPolicyVersion,omitempty"`
	// ApprovedRulesNotInSpec counts the rules approved through PolicyProposals that the
	// Sandbox's spec (or its SandboxPolicy) does not contain yet. The operator keeps them in
	// the desired policy, so a resync never reverts an approval; commit the output of
	// `kubectl openshell policy export` to bring this back to 0.
	// +optional
	ApprovedRulesNotInSpec int32 `json:"approvedRulesNotInSpec,omitempty"`
}

// SandboxStatus is what the gateway reports of the sandbox.
type SandboxStatus struct {
	CommonStatus `json:",inline"`
	// Phase is the gateway's lifecycle phase.
	// +optional
	Phase SandboxPhase `json:"phase,omitempty"`
	// SandboxID is the gateway's id of the sandbox.
	// +optional
	SandboxID string `json:"sandboxID,omitempty"`
	// GatewayName is the sandbox's name on the gateway.
	// +optional
	GatewayName string `json:"gatewayName,omitempty"`
	// Policy is the policy revision state.
	// +optional
	Policy *SandboxPolicyState `json:"policy,omitempty"`
	// Providers are the gateway provider names attached.
	// +optional
	Providers []string `json:"providers,omitempty"`
}

// Sandbox is an OpenShell agent sandbox running on a gateway.
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name must be at most 63 characters: the gateway carries it as a label value",fieldPath=".metadata"
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ossb,categories=openshell
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Policy",type=integer,JSONPath=`.status.policy.activeVersion`,priority=1
// +kubebuilder:printcolumn:name="Gateway Name",type=string,JSONPath=`.status.gatewayName`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Sandbox struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired sandbox.
	Spec SandboxSpec `json:"spec,omitempty"`
	// Status is the observed sandbox.
	// Until the operator's first write it reads {observedGeneration: 0}, so kstatus (Flux) and
	// Argo CD read a new object as not yet observed, never as Current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status SandboxStatus `json:"status,omitempty"`
}

// SandboxList is a list of Sandboxes.
// +kubebuilder:object:root=true
type SandboxList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the sandboxes.
	Items []Sandbox `json:"items"`
}

func init() {
	register(&Sandbox{}, &SandboxList{})
}
