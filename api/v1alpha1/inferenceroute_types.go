package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InferenceRouteSpec configures a cluster inference route on the gateway.
type InferenceRouteSpec struct {
	// GatewayRef names the GatewayConnection; it cannot change after creation.
	// +kubebuilder:default={name: default}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="gatewayRef is immutable"
	// +optional
	GatewayRef GatewayReference `json:"gatewayRef,omitempty"`
	// Route is the gateway route: inference.local (what sandboxes call) or sandbox-system.
	// +kubebuilder:validation:Enum=inference.local;sandbox-system
	// +kubebuilder:default=inference.local
	// +optional
	Route string `json:"route,omitempty"`
	// ProviderRef names a Provider in the same namespace (type openai, anthropic or nvidia).
	ProviderRef LocalObjectReference `json:"providerRef"`
	// Model id served by the route.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Model string `json:"model"`
	// TimeoutSeconds of inference requests; 0 uses the gateway default.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TimeoutSeconds int64 `json:"timeoutSeconds,omitempty"`
	// Verify asks the gateway to verify the provider endpoint when the route is set.
	// +kubebuilder:default=true
	// +optional
	Verify *bool `json:"verify,omitempty"`
}

// InferenceRouteStatus is what the gateway reported for the route.
type InferenceRouteStatus struct {
	CommonStatus `json:",inline"`
	// RouteVersion is the gateway's version of the route.
	// +optional
	RouteVersion uint64 `json:"routeVersion,omitempty"`
	// Verified says whether the gateway verified the endpoint at the last set.
	// +optional
	Verified bool `json:"verified,omitempty"`
	// ValidatedEndpoints are the endpoints the gateway validated.
	// +optional
	ValidatedEndpoints []string `json:"validatedEndpoints,omitempty"`
}

// InferenceRoute routes sandboxes' inference calls to a provider and model.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=osinf,categories=openshell
// +kubebuilder:printcolumn:name="Route",type=string,JSONPath=`.spec.route`
// +kubebuilder:printcolumn:name="Model",type=string,JSONPath=`.spec.model`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type InferenceRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired route.
	Spec InferenceRouteSpec `json:"spec"`
	// Status is the observed route.
	// Until the operator's first write it reads {observedGeneration: 0}, so kstatus (Flux) and
	// Argo CD read a new object as not yet observed, never as Current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status InferenceRouteStatus `json:"status,omitempty"`
}

// InferenceRouteList is a list of InferenceRoutes.
// +kubebuilder:object:root=true
type InferenceRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the routes.
	Items []InferenceRoute `json:"items"`
}

func init() {
	register(&InferenceRoute{}, &InferenceRouteList{})
}
