package controller

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// eventRecorder is the part of an event recorder the controllers use.
type eventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// record emits an event through rec; a reconciler built without a recorder records none.
func record(rec eventRecorder, obj runtime.Object, typ, reason, format string, args ...any) {
	if rec != nil {
		rec.Eventf(obj, typ, reason, format, args...)
	}
}

// Event reasons of actions the operator took. Condition changes use the condition's reason
// (see conditionEvent); these name what was done.
const (
	eventCreated             = "Created"
	eventRecreated           = "Recreated"
	eventUpdated             = "Updated"
	eventDeleted             = "Deleted"
	eventHealed              = "Healed"
	eventPolicyUpdated       = "PolicyUpdated"
	eventRouteSet            = "RouteSet"
	eventRouteLeft           = "RouteLeftConfigured"
	eventSettingApplied      = "SettingApplied"
	eventSettingDeleted      = "SettingDeleted"
	eventGlobalPolicyApplied = "GlobalPolicyApplied"
	eventGlobalPolicyDeleted = "GlobalPolicyDeleted"
	// PolicyProposals: a new chunk, and decisions carried out on the gateway.
	eventProposed         = "Proposed"
	eventProposalEdited   = "ProposalEdited"
	eventProposalApproved = "ProposalApproved"
	eventProposalRejected = "ProposalRejected"
	eventProposalUndone   = "ProposalUndone"
	eventProposalsCleared = "ProposalsCleared"
	// eventGatewayPlatform is the reason of a mirrored gateway platform event without one.
	eventGatewayPlatform = "GatewayEvent"
)

// severity says whether a Ready reason is routine progress, worth a Normal event, or a
// Warning: something went wrong.
type severity int

const (
	severityProgress severity = iota // no event: action events already tell the story
	severityNotice                   // a Normal event: waiting on something the user may want to know
	severityWarning                  // a Warning event: something went wrong
)

// reasonSeverity classifies every Ready reason; a reason missing here is a Warning.
var reasonSeverity = map[string]severity{
	v1alpha1.ReasonReady:              severityProgress,
	v1alpha1.ReasonProgressing:        severityProgress,
	v1alpha1.ReasonProvisioning:       severityProgress,
	v1alpha1.ReasonPolicyPending:      severityProgress,
	v1alpha1.ReasonDeleting:           severityProgress,
	v1alpha1.ReasonRecreating:         severityProgress,
	v1alpha1.ReasonDependencyNotReady: severityNotice,
	v1alpha1.ReasonInUse:              severityNotice,
	v1alpha1.ReasonRecreatePending:    severityNotice,
	v1alpha1.ReasonGlobalPolicyActive: severityNotice,
}

func severityOf(reason string) severity {
	if s, ok := reasonSeverity[reason]; ok {
		return s
	}
	return severityWarning
}

// conditionEvent decides the event for a change of the Ready condition from reason before
// to outcome o: a Warning when it went wrong, a Normal one for a notice or when it recovers
// from a Warning, none for routine progress. The reason is always the condition's reason.
func conditionEvent(before string, o outcome) (eventType string, emit bool) {
	switch severityOf(o.Reason) {
	case severityWarning:
		return corev1.EventTypeWarning, true
	case severityNotice:
		return corev1.EventTypeNormal, true
	}
	if o.Ready && before != "" && severityOf(before) == severityWarning {
		return corev1.EventTypeNormal, true
	}
	return "", false
}

// eventTypeOfPlatform maps a gateway platform event's type to a Kubernetes event type.
func eventTypeOfPlatform(t string) string {
	if t == corev1.EventTypeWarning {
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}
