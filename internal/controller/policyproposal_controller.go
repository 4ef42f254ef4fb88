package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/approvals"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// PolicyProposalReconciler carries reviewers' decisions on PolicyProposals to the gateway
// (Edit, Approve, Reject, Undo of the draft chunk) and mirrors the chunk into status. The
// proposals themselves are created and deleted by PolicyDraftReconciler.
type PolicyProposalReconciler struct {
	client.Client
	Gateways gatewayClients
	Recorder eventRecorder
	Backoff  Backoff
	// Retry is how often a proposal waiting on its sandbox or connection looks again.
	Retry time.Duration
	// Pokes carries proposals whose chunk may have changed (from the draft discovery).
	Pokes <-chan event.GenericEvent
	// View is the observation loops' view of the gateway sandboxes, read for the ownership
	// check before GetSandbox (nil: GetSandbox every time).
	View sandboxView
}

// +kubebuilder:rbac:groups=openshell.dev,resources=policyproposals,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=openshell.dev,resources=policyproposals/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// finalize is never called: proposals hold no finalizer (nothing to clean up on the
// gateway; the chunk belongs to the sandbox).
func (r *PolicyProposalReconciler) finalize(context.Context, *v1alpha1.PolicyProposal) step {
	return step{Release: true}
}

// quorum is the namespace's approval quorum.
func (r *PolicyProposalReconciler) quorum(ctx context.Context, namespace string) (int, *failure) {
	// Metadata only: the annotation is all it needs, and the admission watch caches
	// Namespaces as metadata already.
	ns := namespaceMeta()
	if err := r.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		return 0, failed(v1alpha1.ReasonProgressing, fmt.Sprintf("reading namespace %s: %v", namespace, err), retryBackoff)
	}
	q, err := approvals.Quorum(ns.Annotations)
	if err != nil {
		return 0, failed(v1alpha1.ReasonInvalidSpec, err.Error(), retryOnChange)
	}
	return q, nil
}

// sync mirrors the chunk, then carries out the decision at most once per generation.
func (r *PolicyProposalReconciler) sync(ctx context.Context, p *v1alpha1.PolicyProposal) step {
	stored := p.DeepCopy()
	sb := &v1alpha1.Sandbox{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.SandboxRef.Name}, sb); err != nil {
		if apierrors.IsNotFound(err) {
			return fail(failed(v1alpha1.ReasonDependencyNotReady, fmt.Sprintf("Sandbox %q not found", p.Spec.SandboxRef.Name), retryDependency))
		}
		return fail(failed(v1alpha1.ReasonProgressing, fmt.Sprintf("reading Sandbox %q: %v", p.Spec.SandboxRef.Name, err), retryBackoff))
	}
	quorum, f := r.quorum(ctx, p.Namespace)
	if f != nil {
		return fail(f)
	}
	p.Status.RequiredApprovals = int32(quorum)
	connection := gatewayRefName(sb.Spec.GatewayRef)
	gw, err := r.Gateways.Get(connection)
	if err != nil {
		return fail(connectionFailure(fmt.Errorf("GatewayConnection %q: %w", connection, err)))
	}
	name, f := draftSandbox(ctx, r.View, gw, connection, sb)
	if f != nil {
		st := fail(f)
		if f.Retry == retryOnChange {
			// Another resource's gateway sandbox holds the name; it may go away.
			st.RequeueAfter = r.retry()
		}
		return st
	}
	chunk, err := findChunk(ctx, gw.Approvals, name, p.Spec.ChunkID)
	if err != nil {
		return failCall("get draft policy", err)
	}
	if chunk == nil {
		// The discovery deletes proposals whose chunk is gone; until then say so.
		return fail(failed(v1alpha1.ReasonGatewayRejected, fmt.Sprintf("chunk %s is not on the gateway (cleared)", p.Spec.ChunkID), retryDependency))
	}
	if err := mirrorChunk(&p.Status, chunk); err != nil {
		return fail(failed(v1alpha1.ReasonGatewayRejected, "mirror chunk: "+err.Error(), retryDependency))
	}
	act := nextAction(p, quorum)
	if act == actNone {
		r.recordSeen(p, quorum)
		return step{outcome: proposalOutcome(p, quorum), RequeueAfter: 0}
	}
	if st := r.carryOut(ctx, gw.Approvals, name, p, stored, act); st != nil {
		return *st
	}
	return step{outcome: proposalOutcome(p, quorum)}
}

func (r *PolicyProposalReconciler) retry() time.Duration {
	if r.Retry > 0 {
		return r.Retry
	}
	return defaultDependencyInterval
}

// draftSandbox is the gateway sandbox of sb whose draft chunks may be read and decided: the
// one of its derived name, confirmed to be sb's own (OwnedBy: namespace, name and UID) from
// the observation view when it holds the sandbox, otherwise with GetSandbox. Gateway names are
// truncated and hashed, so another resource's sandbox may hold the name (a collision, or an
// orphan left in a reused namespace): its chunks are another tenant's, so nothing names it.
// Both the draft discovery and the PolicyProposal controller check with this before any
// draft or approval call. The messages name sb only.
func draftSandbox(ctx context.Context, view sandboxView, gw gatewayAPI, connection string, sb *v1alpha1.Sandbox) (string, *failure) {
	name := GatewayName(sb.Namespace, sb.Name)
	var cur *openshellv1.Sandbox
	if view != nil {
		cur, _ = view.Lookup(connection, name)
	}
	if cur == nil {
		got, err := gw.Sandboxes.Get(ctx, name)
		switch {
		case gateway.IsNotFound(err):
			return name, failed(v1alpha1.ReasonDependencyNotReady, fmt.Sprintf("Sandbox %q has no gateway sandbox yet", sb.Name), retryDependency)
		case err != nil:
			return name, gatewayFailure("get sandbox", err)
		}
		cur = got
	}
	if !OwnedBy(cur.GetMetadata().GetLabels(), sb) {
		return name, failed(v1alpha1.ReasonConflict,
			fmt.Sprintf("the gateway sandbox of Sandbox %q is not owned by it; its draft policy is left untouched", sb.Name), retryOnChange)
	}
	return name, nil
}

// recordSeen records the decision as carried out when the gateway already shows it (after a
// restart between the call and the status write, or a decision made elsewhere), so a later
// change of decision is acted on and this one never sent again.
func (r *PolicyProposalReconciler) recordSeen(p *v1alpha1.PolicyProposal, quorum int) {
	if decisionDone(p) {
		return
	}
	gw := p.Status.GatewayStatus
	shown := (p.Spec.Decision == v1alpha1.ProposalApproved && gw == v1alpha1.ChunkApproved) ||
		(p.Spec.Decision == v1alpha1.ProposalRejected && gw == v1alpha1.ChunkRejected) ||
		(p.Spec.Decision == v1alpha1.ProposalPending && gw == v1alpha1.ChunkPending && !ruleEdited(p)) ||
		p.Status.SupersededBy != ""
	if !shown || (p.Spec.Decision == v1alpha1.ProposalApproved && !approvals.QuorumMet(p, quorum) && gw != v1alpha1.ChunkApproved) {
		return
	}
	o := &v1alpha1.ProposalOutcome{Decision: p.Spec.Decision, Generation: p.Generation, Time: nowTime()}
	if prev := p.Status.Outcome; prev != nil && prev.Decision == p.Spec.Decision && prev.Error == "" {
		o.PolicyVersion, o.PolicyHash = prev.PolicyVersion, prev.PolicyHash
	}
	p.Status.Outcome, p.Status.InFlight = o, nil
}

func nowTime() *metav1.Time {
	t := metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	return &t
}

// carryOut records the intent (status.inFlight, written before the call), makes the call
// and records the outcome; a non-nil step is a failure to show.
func (r *PolicyProposalReconciler) carryOut(ctx context.Context, gw approvalsGateway, sandbox string, p, stored *v1alpha1.PolicyProposal, act proposalAction) *step {
	decision := p.Spec.Decision
	p.Status.InFlight = &v1alpha1.ProposalOutcome{Decision: decision, Generation: p.Generation, Time: nowTime()}
	// The one status write besides the kernel's: the intent must be stored before the
	// gateway call, so a restart after the call finds it and reads the gateway instead of
	// trusting a status that predates the call.
	if err := r.Status().Patch(ctx, p, client.MergeFrom(stored)); err != nil {
		st := fail(failed(v1alpha1.ReasonProgressing, "record the decision before sending it: "+err.Error(), retryBackoff))
		return &st
	}
	intent := p.DeepCopy()
	out := &v1alpha1.ProposalOutcome{Decision: decision, Generation: p.Generation}
	var callErr error
	what := string(act)
	switch act {
	case actEdit:
		rule, err := ruleToGateway(p.Spec.Rule)
		if err != nil {
			st := fail(failed(v1alpha1.ReasonInvalidSpec, "spec.rule: "+err.Error(), retryOnChange))
			return &st
		}
		if callErr = gw.Edit(ctx, sandbox, p.Spec.ChunkID, rule); callErr == nil {
			p.Status.ProposedRule = p.Spec.Rule.DeepCopy()
			r.event(p, eventProposalEdited, "edited the proposed rule %s", p.Status.RuleName)
			if decision == v1alpha1.ProposalApproved {
				act, what = actApprove, "approve"
				callErr = r.approve(ctx, gw, sandbox, p, out)
			}
		}
	case actApprove:
		callErr = r.approve(ctx, gw, sandbox, p, out)
	case actReject:
		if callErr = gw.Reject(ctx, sandbox, p.Spec.ChunkID, p.Spec.Reason); callErr == nil {
			p.Status.GatewayStatus, p.Status.RejectionReason = v1alpha1.ChunkRejected, p.Spec.Reason
			r.event(p, eventProposalRejected, "rejected rule %s: %s", p.Status.RuleName, p.Spec.Reason)
		}
	case actUndo:
		var resp *openshellv1.UndoDraftChunkResponse
		if resp, callErr = gw.Undo(ctx, sandbox, p.Spec.ChunkID); callErr == nil {
			out.PolicyVersion, out.PolicyHash = resp.GetPolicyVersion(), resp.GetPolicyHash()
			p.Status.GatewayStatus = v1alpha1.ChunkPending
			r.event(p, eventProposalUndone, "undid the approval of rule %s: policy version %d", p.Status.RuleName, out.PolicyVersion)
		}
	}
	out.Time = nowTime()
	p.Status.InFlight = nil
	var f *failure
	if callErr != nil {
		f = gatewayFailure(what+" chunk", r.classify(act, callErr))
		out.Error = f.Message
	}
	p.Status.Outcome = out
	// The outcome is written at once too: the kernel's write compares with the object as
	// read before the intent, so it would not clear the intent it never saw.
	if err := r.Status().Patch(ctx, p, client.MergeFrom(intent)); err != nil {
		st := fail(failed(v1alpha1.ReasonProgressing, "record the gateway's answer: "+err.Error(), retryBackoff))
		return &st
	}
	if f != nil {
		st := fail(f)
		return &st
	}
	return nil
}

// approve approves the chunk and records the new policy version.
func (r *PolicyProposalReconciler) approve(ctx context.Context, gw approvalsGateway, sandbox string, p *v1alpha1.PolicyProposal, out *v1alpha1.ProposalOutcome) error {
	resp, err := gw.Approve(ctx, sandbox, p.Spec.ChunkID)
	if err != nil {
		return err
	}
	out.PolicyVersion, out.PolicyHash = resp.GetPolicyVersion(), resp.GetPolicyHash()
	p.Status.GatewayStatus = v1alpha1.ChunkApproved
	r.event(p, eventProposalApproved, "approved rule %s: policy version %d", p.Status.RuleName, out.PolicyVersion)
	return nil
}

// classify gives the gateway's FAILED_PRECONDITION on approve (and on reject or undo of an
// approved chunk) its meaning: a global policy is active, which clears when it is deleted.
func (r *PolicyProposalReconciler) classify(act proposalAction, err error) error {
	if act != actEdit && isFailedPrecondition(err) && mentionsGlobalPolicy(err) {
		return withReason(err, v1alpha1.ReasonGlobalPolicyActive, retryDependency)
	}
	return err
}

func (r *PolicyProposalReconciler) event(p *v1alpha1.PolicyProposal, reason, format string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(p, corev1.EventTypeNormal, reason, format, args...)
	}
}

// quorumChanged passes Namespace updates that change the approval quorum annotation.
var quorumChanged = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetAnnotations()[v1alpha1.AnnotationApprovalQuorum] != e.ObjectNew.GetAnnotations()[v1alpha1.AnnotationApprovalQuorum]
	},
}

// namespaceProposals maps a Namespace to its PolicyProposals (a new quorum may complete or
// reopen their approvals).
func (r *PolicyProposalReconciler) namespaceProposals(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.PolicyProposalList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetName())); err != nil {
		logf.FromContext(ctx).Error(err, "list policy proposals of a namespace", "namespace", o.GetName())
		return nil
	}
	return requestsOf(list.Items)
}

// findChunk returns the sandbox's chunk with id, nil when the gateway has none.
func findChunk(ctx context.Context, gw approvalsGateway, sandbox, id string) (*openshellv1.PolicyChunk, error) {
	resp, err := gw.GetDraft(ctx, sandbox, "")
	if err != nil {
		return nil, err
	}
	for _, c := range resp.GetChunks() {
		if c.GetId() == id {
			return c, nil
		}
	}
	return nil, nil
}

// gatewayUse: a proposal acts on its Sandbox's gateway sandbox, so the Sandbox's connection
// admits it (not ok while the Sandbox is missing: sync reports that).
func (r *PolicyProposalReconciler) gatewayUse(ctx context.Context, p *v1alpha1.PolicyProposal) (gatewayUse, bool) {
	sb := &v1alpha1.Sandbox{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.SandboxRef.Name}, sb); err != nil {
		return gatewayUse{}, false
	}
	return gatewayUse{Connection: gatewayRefName(sb.Spec.GatewayRef)}, true
}

// SetupWithManager registers the controller.
func (r *PolicyProposalReconciler) SetupWithManager(mgr ctrl.Manager) error {
	k := newKernel(r.Client, kindPolicyProposal, func() *v1alpha1.PolicyProposal { return &v1alpha1.PolicyProposal{} },
		kindSteps[*v1alpha1.PolicyProposal](r), r.Recorder, false, r.Backoff, r.Retry)
	k.Uses = r.gatewayUse
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.PolicyProposal{}).
		WatchesMetadata(namespaceMeta(), handler.EnqueueRequestsFromMapFunc(r.namespaceProposals), builder.WithPredicates(quorumChanged)).
		WithOptions(controllerOptions(r.Backoff, 0)).
		Named("policyproposal")
	if r.Pokes != nil {
		b = b.WatchesRawSource(source.Channel(r.Pokes, &handler.EnqueueRequestForObject{}))
	}
	b = watchAdmission(b, r.Client, func() client.ObjectList { return &v1alpha1.PolicyProposalList{} })
	return b.Complete(k)
}

// isFailedPrecondition reports the gateway's FAILED_PRECONDITION.
func isFailedPrecondition(err error) bool { return gateway.IsFailedPrecondition(err) }

// mentionsGlobalPolicy reports the gateway's refusal while a global policy is active
// ("policy is managed globally; ..."), as opposed to a chunk in the wrong status.
func mentionsGlobalPolicy(err error) bool {
	return strings.Contains(gateway.Message(err), "managed globally")
}
