package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProviderSpec is a credential provider on the gateway.
type ProviderSpec struct {
	// GatewayRef names the GatewayConnection; it cannot change after creation.
	// +kubebuilder:default={name: default}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="gatewayRef is immutable"
	// +optional
	GatewayRef GatewayReference `json:"gatewayRef,omitempty"`
	// Type is the provider type slug (for example openai, anthropic, nvidia, github).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="type is immutable; create a new Provider"
	Type string `json:"type"`
	// CredentialsSecretRef names a Secret in the same namespace whose keys become the
	// provider's credentials (environment variables in sandboxes). Values are sent only to the
	// gateway, never written anywhere else.
	CredentialsSecretRef CredentialsSecretReference `json:"credentialsSecretRef"`
	// Config is non-secret provider configuration passed through to the gateway (keys of at
	// most 256 and values of at most 8192 bytes, the gateway's limits). The key
	// openshell.dev/credentials-sha256 is the operator's own.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 256 && size(self[k]) >= 1 && size(self[k]) <= 8192)",message="config keys must be 1-256 bytes and values 1-8192 bytes (an empty value would delete the key on the gateway)"
	// +kubebuilder:validation:XValidation:rule="!('openshell.dev/credentials-sha256' in self)",message="config key openshell.dev/credentials-sha256 is reserved for the operator"
	// +optional
	Config map[string]string `json:"config,omitempty"`
	// DeletionPolicy: Delete removes the gateway provider with this resource, Orphan leaves it.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// CredentialsSecretReference selects keys of a Secret in the same namespace.
type CredentialsSecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// Keys to use; all keys of the Secret when empty. Each must be an environment variable
	// name.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	// +optional
	Keys []string `json:"keys,omitempty"`
}

// ProviderStatus is what the operator observed of the gateway provider.
type ProviderStatus struct {
	CommonStatus `json:",inline"`
	// GatewayName is the provider's name on the gateway.
	// +optional
	GatewayName string `json:"gatewayName,omitempty"`
	// ProviderID is the gateway's id of the provider.
	// +optional
	ProviderID string `json:"providerID,omitempty"`
	// CredentialsHash is a SHA-256 over the credential keys and values last sent (never the
	// values themselves); the gateway only ever returns REDACTED values.
	// +optional
	CredentialsHash string `json:"credentialsHash,omitempty"`
	// CredentialKeys are the credential keys last sent.
	// +listType=set
	// +optional
	CredentialKeys []string `json:"credentialKeys,omitempty"`
}

// Provider is a credential provider (API keys, tokens) that sandboxes can attach.
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name must be at most 63 characters: the gateway carries it as a label value",fieldPath=".metadata"
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=osprov,categories=openshell
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Gateway Name",type=string,JSONPath=`.status.gatewayName`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Provider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired provider.
	Spec ProviderSpec `json:"spec"`
	// Status is the observed provider.
	// Until the operator's first write it reads {observedGeneration: 0}, so kstatus (Flux) and
	// Argo CD read a new object as not yet observed, never as Current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status ProviderStatus `json:"status,omitempty"`
}

// ProviderList is a list of Providers.
// +kubebuilder:object:root=true
type ProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the providers.
	Items []Provider `json:"items"`
}

func init() {
	register(&Provider{}, &ProviderList{})
}
