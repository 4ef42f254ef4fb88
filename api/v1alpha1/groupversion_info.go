// Package v1alpha1 contains the openshell.dev/v1alpha1 API: GatewayConnection, Provider,
// Sandbox, SandboxPolicy and InferenceRoute.
// +kubebuilder:object:generate=true
// +groupName=openshell.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these kinds.
	GroupVersion = schema.GroupVersion{Group: "openshell.dev", Version: "v1alpha1"}
	// SchemeBuilder registers the kinds with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the kinds of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
