package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GatewayConnectionSpec says how to reach one OpenShell gateway.
// +kubebuilder:validation:XValidation:rule="!self.endpoint.startsWith('http://')",message="plaintext http endpoints are not allowed; use https or host:port"
type GatewayConnectionSpec struct {
	// Endpoint of the gateway: host:port or https://host:port (for example
	// openshell.openshell.svc.cluster.local:8080).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Endpoint string `json:"endpoint"`
	// TLS configures mutual TLS with the gateway.
	TLS GatewayTLS `json:"tls"`
	// Auth configures an optional OIDC bearer token; a gateway deployed on Kubernetes
	// identifies callers only by token.
	// +optional
	Auth *GatewayAuth `json:"auth,omitempty"`
	// Timeout is the default deadline of each gateway call.
	// +kubebuilder:default="30s"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Settings are gateway-wide settings to manage, by registered key.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Settings map[string]SettingValue `json:"settings,omitempty"`
	// GlobalPolicyRef applies a SandboxPolicy to every sandbox of the gateway; removing the
	// reference deletes the global policy.
	// +optional
	GlobalPolicyRef *NamespacedObjectReference `json:"globalPolicyRef,omitempty"`
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
	Namespace string `json:"namespace"`
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key in the Secret's data.
	// +kubebuilder:default=token
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
	// +optional
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
