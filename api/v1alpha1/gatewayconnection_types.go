package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// GatewayConnectionSpec says how to reach one OpenShell gateway.
// +kubebuilder:validation:XValidation:rule="!self.endpoint.startsWith('http://')",message="plaintext http endpoints are not allowed; use https or host:port"
type GatewayConnectionSpec struct {
	// Endpoint of the gateway: host:port or https://host:port (for example
	// openshell.openshell.svc.cluster.local:8080); the port defaults to 443. No path.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.startsWith('http://') || self.matches('^(https://)?([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|[[][0-9A-Fa-f:.]+[]])(:[0-9]{1,5})?/?$')",message="endpoint must be host, host:port or https://host:port, without a path"
	Endpoint string `json:"endpoint"`
	// TLS configures mutual TLS with the gateway.
	TLS GatewayTLS `json:"tls"`
	// Auth configures an optional OIDC bearer token; a gateway deployed on Kubernetes
	// identifies callers only by token.
	// +optional
	Auth *GatewayAuth `json:"auth,omitempty"`
	// Timeout is the default deadline of each gateway call: a Go duration, more than 0 and at
	// most 10m.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="timeout must be a duration such as 30s or 1m30s"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || (duration(self) > duration('0s') && duration(self) <= duration('10m'))",message="timeout must be more than 0 and at most 10m"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Settings are gateway-wide settings to manage, by registered key. The policy key is
	// reserved (use globalPolicyRef); the registered keys of the gateway must have their
	// type (providers_v2_enabled, ocsf_json_enabled and agent_policy_proposals_enabled are
	// bool; proposal_approval_mode is the string manual or auto).
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="!('policy' in self)",message="the policy setting is reserved: use spec.globalPolicyRef"
	// +kubebuilder:validation:XValidation:rule="['providers_v2_enabled', 'ocsf_json_enabled', 'agent_policy_proposals_enabled'].all(k, !(k in self) || has(self[k].bool))",message="providers_v2_enabled, ocsf_json_enabled and agent_policy_proposals_enabled take a bool"
	// +kubebuilder:validation:XValidation:rule="!('proposal_approval_mode' in self) || (has(self['proposal_approval_mode'].string) && self['proposal_approval_mode'].string in ['manual', 'auto'])",message="proposal_approval_mode takes the string manual or auto"
	// +optional
	Settings map[string]SettingValue `json:"settings,omitempty"`
	// GlobalPolicyRef applies a SandboxPolicy to every sandbox of the gateway; removing the
	// reference deletes the global policy.
	// +optional
	GlobalPolicyRef *NamespacedObjectReference `json:"globalPolicyRef,omitempty"`
	// Namespaces says from which namespaces Sandboxes, Providers and InferenceRoutes may use
	// this gateway (name it in spec.gatewayRef). Default: from All, every namespace.
	// +kubebuilder:default={from: All}
	// +optional
	Namespaces *AllowedNamespaces `json:"namespaces,omitempty"`
	// InferenceRoutes says who may claim the gateway-global inference routes
	// (inference.local, sandbox-system), which answer for every sandbox of the gateway.
	// Default: nobody, so an InferenceRoute is refused until an administrator grants its
	// namespace here.
	// +kubebuilder:default={namespaces: {from: None}}
	// +optional
	InferenceRoutes *InferenceRouteGrant `json:"inferenceRoutes,omitempty"`
}

// NamespacesFrom says which namespaces an AllowedNamespaces rule admits.
// +kubebuilder:validation:Enum=All;Selector;None
type NamespacesFrom string

// The values of AllowedNamespaces.From.
const (
	// NamespacesFromAll admits every namespace.
	NamespacesFromAll NamespacesFrom = "All"
	// NamespacesFromSelector admits the namespaces whose labels match the selector.
	NamespacesFromSelector NamespacesFrom = "Selector"
	// NamespacesFromNone admits no namespace.
	NamespacesFromNone NamespacesFrom = "None"
)

// AllowedNamespaces selects namespaces, in the shape of Gateway API's
// allowedRoutes.namespaces. Namespaces carry the label kubernetes.io/metadata.name with their
// name, so a selector can list namespaces by name.
// +kubebuilder:validation:XValidation:rule="self.from == 'Selector' ? has(self.selector) : !has(self.selector)",message="selector is required with from: Selector and not allowed otherwise"
type AllowedNamespaces struct {
	// From is All (every namespace), Selector (those matching selector) or None.
	From NamespacesFrom `json:"from"`
	// Selector of the admitted namespaces' labels, with from: Selector. An empty selector
	// matches every namespace.
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn'] ? (has(e.values) && size(e.values) > 0) : (e.operator in ['Exists', 'DoesNotExist'] && (!has(e.values) || size(e.values) == 0)))",message="matchExpressions: In and NotIn need values; Exists and DoesNotExist take none; no other operator exists"
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// Admits reports whether a namespace with these labels is admitted; a nil rule takes
// fallback (the field's default, for objects read without API server defaulting). A selector
// the API server let through but labels cannot parse admits nothing and returns the error.
func (a *AllowedNamespaces) Admits(nsLabels map[string]string, fallback NamespacesFrom) (bool, error) {
	from := fallback
	if a != nil {
		from = a.From
	}
	switch from {
	case NamespacesFromAll:
		return true, nil
	case NamespacesFromSelector:
		if a == nil || a.Selector == nil {
			return false, nil
		}
		sel, err := metav1.LabelSelectorAsSelector(a.Selector)
		if err != nil {
			return false, fmt.Errorf("namespace selector: %w", err)
		}
		return sel.Matches(labels.Set(nsLabels)), nil
	default:
		return false, nil
	}
}

// InferenceRouteGrant grants the claim of the gateway-global inference routes.
type InferenceRouteGrant struct {
	// Namespaces whose InferenceRoutes may claim a route of this gateway.
	// +kubebuilder:default={from: None}
	// +optional
	Namespaces *AllowedNamespaces `json:"namespaces,omitempty"`
}

// GatewayTLS points at the Secret holding the client certificate.
type GatewayTLS struct {
	// SecretRef names a Secret with keys ca.crt, tls.crt and tls.key: the layout of the
	// OpenShell Helm chart's openshell-client-tls Secret and of cert-manager.
	SecretRef NamespacedObjectReference `json:"secretRef"`
	// ServerName overrides the name the gateway's certificate must carry, for endpoints
	// reached through an address not in the certificate.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ServerName string `json:"serverName,omitempty"`
}

// GatewayAuth configures bearer-token authentication.
type GatewayAuth struct {
	// TokenSecretRef names the Secret and key holding the bearer token.
	TokenSecretRef SecretKeyReference `json:"tokenSecretRef"`
}

// SecretKeyReference names one key of a Secret in a namespace.
type SecretKeyReference struct {
	// Namespace of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// Key in the Secret's data.
	// +kubebuilder:default=token
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}

// SettingValue is one typed gateway setting; exactly one field is set.
// +kubebuilder:validation:XValidation:rule="(has(self.bool) ? 1 : 0) + (has(self.string) ? 1 : 0) + (has(self.int) ? 1 : 0) == 1",message="exactly one of bool, string or int must be set"
type SettingValue struct {
	// Bool value.
	// +optional
	Bool *bool `json:"bool,omitempty"`
	// String value.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	String *string `json:"string,omitempty"`
	// Int value.
	// +optional
	Int *int64 `json:"int,omitempty"`
}

// GatewayConnectionStatus is what the operator observed of the gateway.
type GatewayConnectionStatus struct {
	CommonStatus `json:",inline"`
	// GatewayVersion is the version the gateway's Health call reported.
	// +optional
	GatewayVersion string `json:"gatewayVersion,omitempty"`
	// CertificateNotAfter is when the client certificate expires.
	// +optional
	CertificateNotAfter *metav1.Time `json:"certificateNotAfter,omitempty"`
	// SettingsRevision is the gateway's settings revision after the last settings change.
	// +optional
	SettingsRevision uint64 `json:"settingsRevision,omitempty"`
	// GlobalPolicyVersion is the version of the global policy, 0 when none is applied.
	// +optional
	GlobalPolicyVersion uint32 `json:"globalPolicyVersion,omitempty"`
	// GlobalPolicyHash is the operator's canonical hash of the applied global policy.
	// +optional
	GlobalPolicyHash string `json:"globalPolicyHash,omitempty"`
	// ManagedSettings are the setting keys this resource set on the gateway; a key removed
	// from spec.settings is deleted on the gateway only if it is listed here.
	// +listType=set
	// +optional
	ManagedSettings []string `json:"managedSettings,omitempty"`
}

// GatewayConnection is a connection to one OpenShell gateway; other resources name it in
// spec.gatewayRef (default: the connection named "default").
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=gwc,categories=openshell
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.endpoint`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.gatewayVersion`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GatewayConnection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired connection.
	Spec GatewayConnectionSpec `json:"spec"`
	// Status is the observed state of the gateway.
	// Until the operator's first write it reads {observedGeneration: 0}, so kstatus (Flux) and
	// Argo CD read a new object as not yet observed, never as Current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status GatewayConnectionStatus `json:"status,omitempty"`
}

// GatewayConnectionList is a list of GatewayConnections.
// +kubebuilder:object:root=true
type GatewayConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the connections.
	Items []GatewayConnection `json:"items"`
}

func init() {
	register(&GatewayConnection{}, &GatewayConnectionList{})
}
