package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Condition types shared by every kind (kstatus-compatible, as Flux uses them).
const (
	// ConditionReady is True when the gateway object exists, matches the current generation
	// and the gateway reports it ready.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the operator is still converging the object.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when progress needs a change by the user (a terminal error).
	ConditionStalled = "Stalled"
)

// Condition reasons. Events use the same reason as the condition they accompany.
const (
	ReasonReady                = "Ready"
	ReasonProgressing          = "Progressing"
	ReasonProvisioning         = "Provisioning"
	ReasonDependencyNotReady   = "DependencyNotReady"
	ReasonGatewayUnavailable   = "GatewayUnavailable"
	ReasonGatewayRejected      = "GatewayRejected"
	ReasonConflict             = "Conflict"
	ReasonInvalidSpec          = "InvalidSpec"
	ReasonSecretNotFound       = "SecretNotFound"
	ReasonSecretKeyMissing     = "SecretKeyMissing"
	ReasonCertificateInvalid   = "CertificateInvalid"
	ReasonCertificateExpired   = "CertificateExpired"
	ReasonAuthenticationFailed = "AuthenticationFailed"
	ReasonRecreatePending      = "RecreatePending"
	ReasonRecreating           = "Recreating"
	ReasonDeleting             = "Deleting"
	ReasonInUse                = "InUse"
	ReasonPolicyPending        = "PolicyPending"
	ReasonPolicyFailed         = "PolicyFailed"
	ReasonGlobalPolicyActive   = "GlobalPolicyActive"
	ReasonPolicyRejected       = "PolicyRejected"
	ReasonUnsupportedProvider  = "UnsupportedProvider"
	ReasonSandboxError         = "SandboxError"
	// ReasonNamespaceNotAllowed: the GatewayConnection's spec.namespaces (or, for an
	// InferenceRoute, spec.inferenceRoutes.namespaces) does not admit the object's namespace.
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	// ReasonReferenceNotAllowed: a GatewayConnection names a Secret or SandboxPolicy outside
	// the operator's cluster resource namespaces (--cluster-resource-namespace).
	ReasonReferenceNotAllowed = "ReferenceNotAllowed"
)

// Finalizer is added to every object the operator mirrors on a gateway.
const Finalizer = "openshell.dev/finalizer"

// Labels stamped on every gateway object the operator creates; they prove ownership.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "openshell-operator"
	LabelNamespace = "openshell.dev/namespace"
	LabelName      = "openshell.dev/name"
	LabelUID       = "openshell.dev/uid"
	// LabelGeneration is the resource generation a gateway sandbox was created for. A
	// manager whose cache is older than that (a paused former leader) leaves it alone.
	LabelGeneration = "openshell.dev/generation"
)

// DefaultGatewayConnection is the connection used when gatewayRef is omitted.
const DefaultGatewayConnection = "default"

// DeletionPolicy says what happens on the gateway when the resource is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeletionPolicy string

// Deletion policies.
const (
	DeletionPolicyDelete DeletionPolicy = "Delete"
	DeletionPolicyOrphan DeletionPolicy = "Orphan"
)

// GatewayReference names the cluster-scoped GatewayConnection to use.
type GatewayReference struct {
	// Name of the GatewayConnection.
	// +kubebuilder:default=default
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Name string `json:"name,omitempty"`
}

// LocalObjectReference names an object in the same namespace; it has no namespace field, so
// a reference can never leave the namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// NamespacedObjectReference names an object in a given namespace.
type NamespacedObjectReference struct {
	// Namespace of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// CommonStatus is embedded in every kind's status.
type CommonStatus struct {
	// ObservedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling and Stalled.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
