package v1alpha1

// GetCommonStatus returns the status fields every kind shares (observedGeneration and
// conditions), so one reconcile kernel can write them for every kind.
func (o *GatewayConnection) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetCommonStatus returns the status fields every kind shares.
func (o *Provider) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetCommonStatus returns the status fields every kind shares.
func (o *Sandbox) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetCommonStatus returns the status fields every kind shares.
func (o *SandboxPolicy) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetCommonStatus returns the status fields every kind shares.
func (o *InferenceRoute) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetCommonStatus returns the status fields every kind shares.
func (o *PolicyProposal) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }
