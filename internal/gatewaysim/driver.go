package gatewaysim

import (
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// transientReasons are the Ready=False reasons that keep a sandbox PROVISIONING; any other
// reason is ERROR (derive_phase, semantics §1.2). Compared case-insensitively.
var transientReasons = []string{
	"ReconcilerError", "DependenciesNotReady", "Starting", "ContainerStarting",
	"ContainerCreated", "HealthCheckStarting", "InspectFailed",
}

// derivePhase maps the driver's Ready condition to a phase like the gateway's derive_phase.
func derivePhase(status, reason string) openshellv1.SandboxPhase {
	switch status {
	case "True":
		return openshellv1.SandboxPhase_SANDBOX_PHASE_READY
	case "False":
		for _, t := range transientReasons {
			if strings.EqualFold(t, reason) {
				return openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING
			}
		}
		return openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR
	}
	return openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING
}

// DriverCondition applies a driver status event carrying the Ready condition (status
// "True", "False" or anything else, reason, message), as the Kubernetes driver reports the
// CR's condition: the phase is derived from it (a transient reason stays PROVISIONING, any
// other Ready=False reason is ERROR), the condition replaces the public ones, a connected
// supervisor then promotes PROVISIONING to READY, and the resource version goes up. It
// releases a ForcePhase pin. A missing sandbox is NOT_FOUND; a DELETING one is
// FAILED_PRECONDITION (its CR has a deletion timestamp, so every event says DELETING).
func (s *Simulator) DriverCondition(name, condStatus, reason, message string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.sandboxes[name]
	if r == nil {
		return status.Error(codes.NotFound, "sandbox not found")
	}
	if r.sb.Status.Phase == openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING {
		return status.Error(codes.FailedPrecondition, "sandbox is being deleted")
	}
	r.forced = false
	r.sb.Status.Phase = derivePhase(condStatus, reason)
	r.sb.Status.Conditions = []*openshellv1.SandboxCondition{{
		Type: "Ready", Status: condStatus, Reason: reason, Message: message, LastTransitionTime: time.Now().UTC().Format(time.RFC3339),
	}}
	r.event(reason, message)
	if r.supervisor && promotable(r) {
		setPhase(r, openshellv1.SandboxPhase_SANDBOX_PHASE_READY)
	}
	s.state.bump(r)
	return nil
}

// SetSupervisorConnected connects or disconnects the simulated supervisor session of a
// sandbox (§1.2): on disconnect a READY sandbox goes back to PROVISIONING with Ready=False
// reason DependenciesNotReady; on connect PROVISIONING or UNKNOWN is promoted to READY.
// Pinned (ForcePhase), DELETING and ERROR sandboxes keep their phase. Each change bumps the
// resource version. A missing sandbox is NOT_FOUND.
func (s *Simulator) SetSupervisorConnected(name string, connected bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.sandboxes[name]
	if r == nil {
		return status.Error(codes.NotFound, "sandbox not found")
	}
	if r.supervisor == connected {
		return nil
	}
	r.supervisor = connected
	switch {
	case r.forced:
	case connected && promotable(r):
		setPhase(r, openshellv1.SandboxPhase_SANDBOX_PHASE_READY)
		r.event("Started", "supervisor session connected")
	case !connected && r.sb.Status.Phase == openshellv1.SandboxPhase_SANDBOX_PHASE_READY:
		r.sb.Status.Phase = openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING
		r.sb.Status.Conditions = []*openshellv1.SandboxCondition{{
			Type: "Ready", Status: "False", Reason: "DependenciesNotReady", Message: "Supervisor session disconnected",
			LastTransitionTime: time.Now().UTC().Format(time.RFC3339),
		}}
		r.event("DependenciesNotReady", "supervisor session disconnected")
	}
	s.state.bump(r)
	return nil
}
