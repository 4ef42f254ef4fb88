package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GetConditions returns the conditions.
func (o *GatewayConnection) GetConditions() []metav1.Condition { return o.Status.Conditions }

// SetConditions replaces the conditions.
func (o *GatewayConnection) SetConditions(c []metav1.Condition) { o.Status.Conditions = c }

// GetConditions returns the conditions.
func (o *Provider) GetConditions() []metav1.Condition { return o.Status.Conditions }

// SetConditions replaces the conditions.
func (o *Provider) SetConditions(c []metav1.Condition) { o.Status.Conditions = c }

// GetConditions returns the conditions.
func (o *Sandbox) GetConditions() []metav1.Condition { return o.Status.Conditions }

// SetConditions replaces the conditions.
func (o *Sandbox) SetConditions(c []metav1.Condition) { o.Status.Conditions = c }

// GetConditions returns the conditions.
func (o *SandboxPolicy) GetConditions() []metav1.Condition { return o.Status.Conditions }

// SetConditions replaces the conditions.
func (o *SandboxPolicy) SetConditions(c []metav1.Condition) { o.Status.Conditions = c }

// GetConditions returns the conditions.
func (o *InferenceRoute) GetConditions() []metav1.Condition { return o.Status.Conditions }

// SetConditions replaces the conditions.
func (o *InferenceRoute) SetConditions(c []metav1.Condition) { o.Status.Conditions = c }
