package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// Field indexes on Sandbox used to re-enqueue dependents.
const (
	sandboxProviderIndex = "spec.providers"
	sandboxPolicyIndex   = "spec.policyRef.name"
	sandboxGatewayIndex  = "spec.gatewayRef.name"
)

// SandboxReconciler reconciles Sandbox resources into OpenShell gateway sandboxes.
type SandboxReconciler struct {
	client.Client
	Gateways gatewayClients
	Recorder eventRecorder
	// Transitional is the requeue interval while a sandbox is provisioning or deleting.
	Transitional time.Duration
	mirror       sandboxEventMirror
	// Resync is the requeue interval once converged. With a watching View it reads only the
	// view (no gateway call); with polling it is a GetSandbox that notices gateway-side
	// changes (ERROR, out-of-band deletes). Default one minute.
	Resync time.Duration
	// View is the per-gateway observation (list + watch) read instead of GetSandbox; nil
	// selects per-object polling (pollView).
	View sandboxView
	// ViewEvents delivers the sandboxes whose observed state changed.
	ViewEvents <-chan event.GenericEvent
	// MaxConcurrentReconciles (default 1, controller-runtime's default).
	MaxConcurrentReconciles int
	// Backoff spaces the retries of a sandbox whose gateway calls keep failing.
	Backoff Backoff
	// recreates remembers the operator's own deletions for a recreate, which the cache may
	// not show yet when the next reconcile sees the sandbox gone.
	recreates recreateLog
}

// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxes/finalizers,verbs=update
// +kubebuilder:rbac:groups=openshell.dev,resources=providers;sandboxpolicies;gatewayconnections,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

func (r *SandboxReconciler) transitional() time.Duration {
	if r.Transitional > 0 {
		return r.Transitional
	}
	return 2 * time.Second
}

func (r *SandboxReconciler) resync() time.Duration {
	if r.Resync > 0 {
		return r.Resync
	}
	return time.Minute
}

var (
	// errGlobalPolicyActive: the gateway refuses sandbox policy updates while a global
	// policy exists (the only FAILED_PRECONDITION of a sandbox-scoped policy update).
	errGlobalPolicyActive = errors.New("a global policy is active")
	// errPolicyRejected: the gateway refused the policy itself (INVALID_ARGUMENT).
	errPolicyRejected = errors.New("policy rejected")
)

// sandboxRefs are the names a Sandbox reconcile uses, resolved once.
type sandboxRefs struct {
	// Connection is the GatewayConnection's name.
	Connection string
	// Namespace is the Sandbox's namespace (the observation loop shares its streams out per
	// namespace).
	Namespace string
	// Name is the sandbox's name on the gateway.
	Name string
}

func refsOf(sb *v1alpha1.Sandbox) sandboxRefs {
	return sandboxRefs{Connection: gatewayRefName(sb.Spec.GatewayRef), Namespace: sb.Namespace, Name: GatewayName(sb.Namespace, sb.Name)}
}

// newObservation starts an observation from what status recorded last.
func newObservation(sb *v1alpha1.Sandbox, refs sandboxRefs) sandboxObservation {
	return sandboxObservation{GatewayName: refs.Name, ID: sb.Status.SandboxID, Policy: sb.Status.Policy.DeepCopy()}
}

// sync observes the gateway sandbox, then creates, updates in place, recreates or does
// nothing, and derives the whole status from what it saw.
func (r *SandboxReconciler) sync(ctx context.Context, sb *v1alpha1.Sandbox) step {
	refs := refsOf(sb)
	obs := newObservation(sb, refs)
	res := r.observeAndAct(ctx, sb, refs, &obs)
	if obs.Stale {
		return step{Stale: true}
	}
	d := r.derive(sb, obs)
	if res == 0 && (obs.Failure == nil || obs.Failure.Retry != retryBackoff) {
		res = r.requeueAfter(refs, d)
	}
	return step{outcome: d.Outcome, Failure: obs.Failure, RequeueAfter: res, GenerationApplied: d.GenerationApplied}
}

// derive writes the derived status into sb and records the outcome metric's phase gauge.
func (r *SandboxReconciler) derive(sb *v1alpha1.Sandbox, obs sandboxObservation) sandboxDerivedStatus {
	d := deriveSandboxStatus(sb.Status, obs)
	d.Status.CommonStatus = sb.Status.CommonStatus
	sb.Status = d.Status
	return d
}

// observeAndAct performs at most the gateway calls needed and fills the observation; it
// returns the requeue it wants (0: the kernel's or requeueAfter's).
func (r *SandboxReconciler) observeAndAct(ctx context.Context, sb *v1alpha1.Sandbox, refs sandboxRefs, obs *sandboxObservation) time.Duration {
	gw, err := r.Gateways.Get(refs.Connection)
	if err != nil {
		obs.Failure = failed(v1alpha1.ReasonDependencyNotReady, fmt.Sprintf("GatewayConnection %q: %v", refs.Connection, err), retryDependency)
		return r.transitional()
	}
	desired, policySpec, f := r.desiredSpec(ctx, sb, obs, gw.Providers, refs.Connection)
	if f != nil {
		obs.Failure = f
		return r.transitional()
	}
	obs.PolicyVersion = policyVersion(sb)
	obs.GlobalPolicyVersion = r.globalPolicyVersion(ctx, refs.Connection)

	cur, fromView, err := r.getSandbox(ctx, gw, sb, refs)
	obs.FromView = fromView
	switch {
	case gateway.IsNotFound(err):
		return r.create(ctx, gw, sb, refs, desired, obs)
	case err != nil:
		obs.Failure = gatewayFailure("get sandbox", err)
		return 0
	case !OwnedBy(cur.GetMetadata().GetLabels(), sb):
		obs.Failure = failed(v1alpha1.ReasonConflict,
			fmt.Sprintf("gateway sandbox %q exists and is not owned by this resource; it is left untouched", refs.Name), retryOnChange)
		return r.resync()
	}
	obs.Sandbox, obs.ID = cur, cur.GetMetadata().GetId()
	r.mirrorPlatformEvents(ctx, gw.Events, sb, refs, cur, sb.Status.Phase == v1alpha1.SandboxPhaseReady)
	if cur.GetStatus().GetPhase() == openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING {
		obs.Recreating = r.recreates.pending(sb.UID, obs.ID) || readyReason(sb.Status.Conditions) == v1alpha1.ReasonRecreating
		return r.transitional()
	}
	return r.update(ctx, gw, sb, refs, desired, policySpec, cur, obs)
}

// update recreates the sandbox, or attaches and detaches providers and pushes the policy in
// place, with the gateway's approved rules merged into policySpec (the spec's policy).
func (r *SandboxReconciler) update(ctx context.Context, gw gatewayAPI, sb *v1alpha1.Sandbox, refs sandboxRefs, desired *openshellv1.SandboxSpec,
	policySpec *v1alpha1.SandboxPolicySpec, cur *openshellv1.Sandbox, obs *sandboxObservation) time.Duration {
	if newer := stampedGeneration(cur); newer > sb.Generation {
		// Leader election does not fence a paused process: a former leader resuming with a
		// stale cache must not undo what the current one wrote for a newer generation.
		obs.Failure = failed(v1alpha1.ReasonProgressing, fmt.Sprintf(
			"the gateway sandbox was created for generation %d, newer than the %d this operator has seen; waiting for its cache", newer, sb.Generation), retryBackoff)
		return 0
	}
	diff := diffSandboxSpec(desired, cur.GetSpec())
	if diff.NeedsRecreate() {
		if sb.Spec.UpdateStrategy == v1alpha1.UpdateStrategyOnDelete {
			obs.RecreatePending, obs.RecreateReasons = true, diff.Recreate
			obs.ProvidersAttached = !diff.InPlace()
			return 0
		}
		if obs.FromView {
			current, err := r.currentForRecreate(ctx, gw, refs, cur)
			switch {
			case gateway.IsNotFound(err):
				return r.transitional() // gone meanwhile: the next look creates it
			case err != nil:
				obs.Failure = gatewayFailure("get sandbox", err)
				return 0
			case !current:
				return r.transitional()
			}
		}
		if _, err := gw.Sandboxes.Delete(ctx, refs.Name); err != nil && !gateway.IsNotFound(err) {
			obs.Failure = gatewayFailure("delete sandbox for recreate", err)
			return 0
		}
		r.recreates.mark(sb.UID, obs.ID)
		r.View.Await(refs.Connection, refs.Namespace, refs.Name, obs.ID)
		obs.Recreating = true
		return r.transitional()
	}
	obs.SpecInSync = true
	var err error
	for _, p := range diff.Attach {
		if cur, _, err = gw.Sandboxes.AttachProvider(ctx, refs.Name, p, 0); err != nil {
			obs.Failure = gatewayFailure(fmt.Sprintf("attach provider %q", p), err)
			return 0
		}
	}
	for _, p := range diff.Detach {
		if cur, _, err = gw.Sandboxes.DetachProvider(ctx, refs.Name, p, 0); err != nil {
			obs.Failure = gatewayFailure(fmt.Sprintf("detach provider %q", p), err)
			return 0
		}
	}
	if len(diff.Attach)+len(diff.Detach) > 0 {
		r.View.Record(refs.Connection, cur)
	}
	obs.Sandbox = cur
	obs.ProvidersAttached = true
	// Only here: the gateway sandbox is this Sandbox's (owned, not newer), so its approved
	// chunks are this Sandbox's approvals.
	policy, f := r.withApprovedRules(ctx, gw.Approvals, sb, refs, policySpec, desired.GetPolicy(), obs)
	if f != nil {
		obs.Failure = f
		return 0
	}
	if err := r.syncPolicy(ctx, gw.Policies, sb, refs, policy, cur, obs); err != nil {
		obs.Failure = gatewayFailure("policy", err)
		if errors.Is(err, errGlobalPolicyActive) {
			// Retrying sooner would only repeat a refused write.
			return r.resync()
		}
	}
	return 0
}

// stampedGeneration is the resource generation a gateway sandbox was created for (0 when
// it carries none: created by an older operator).
func stampedGeneration(sb *openshellv1.Sandbox) int64 {
	g, err := strconv.ParseInt(sb.GetMetadata().GetLabels()[v1alpha1.LabelGeneration], 10, 64)
	if err != nil {
		return 0
	}
	return g
}

// create creates the gateway sandbox; a sandboxID in status means it vanished (heal),
// unless the operator itself deleted it to recreate it.
func (r *SandboxReconciler) create(ctx context.Context, gw gatewayAPI, sb *v1alpha1.Sandbox, refs sandboxRefs, desired *openshellv1.SandboxSpec, obs *sandboxObservation) time.Duration {
	switch current, err := confirmCurrent(ctx, sb); {
	case err != nil:
		obs.Failure = failed(v1alpha1.ReasonProgressing, fmt.Sprintf("confirm the resource is current before creating its gateway sandbox: %v", err), retryBackoff)
		return 0
	case !current:
		obs.Stale = true
		return 0
	}
	labels := OwnershipLabels(sb)
	labels[v1alpha1.LabelGeneration] = strconv.FormatInt(sb.Generation, 10)
	created, err := gw.Sandboxes.Create(ctx, refs.Name, desired, labels)
	if gateway.IsAlreadyExists(err) {
		// Lost a race with ourselves or someone else (or a crash before the status write):
		// read it so the next reconcile does not rely on a view that missed it.
		if cur, err := gw.Sandboxes.Get(ctx, refs.Name); err == nil {
			r.View.Record(refs.Connection, cur)
		}
		return r.transitional()
	}
	if err != nil {
		obs.Failure = gatewayFailure("create sandbox", err)
		return 0
	}
	id := created.GetMetadata().GetId()
	planned := r.recreates.take(sb.UID, obs.ID) || readyReason(sb.Status.Conditions) == v1alpha1.ReasonRecreating
	switch {
	case planned:
		record(r.Recorder, sb, corev1.EventTypeNormal, eventRecreated, "recreated gateway sandbox %s (id %s)", refs.Name, id)
	case obs.ID != "":
		record(r.Recorder, sb, corev1.EventTypeWarning, eventHealed, "gateway sandbox %s (id %s) was gone; created it again (id %s)", refs.Name, obs.ID, id)
	default:
		record(r.Recorder, sb, corev1.EventTypeNormal, eventCreated, "created gateway sandbox %s (id %s)", refs.Name, id)
	}
	obs.ID = id
	r.View.Record(refs.Connection, created)
	r.View.Await(refs.Connection, refs.Namespace, refs.Name, id)
	// A new sandbox starts from the spec's policy baseline; earlier revisions are gone.
	obs.Policy = nil
	if desired.GetPolicy() != nil {
		obs.Policy = &v1alpha1.SandboxPolicyState{SourceHash: sandboxPolicyHash(desired.GetPolicy())}
	}
	obs.PolicyVersion = 0
	obs.Sandbox, obs.SpecInSync, obs.ProvidersAttached = created, true, true
	return r.transitional()
}

// syncPolicy pushes the desired policy when the live one (latest revision, or the
// create-time baseline when there are none) differs, then reads its load status.
func (r *SandboxReconciler) syncPolicy(ctx context.Context, gw policyGateway, sb *v1alpha1.Sandbox, refs sandboxRefs, desired *sandboxv1.SandboxPolicy, cur *openshellv1.Sandbox, obs *sandboxObservation) error {
	obs.ActivePolicyVersion = cur.GetStatus().GetCurrentPolicyVersion()
	if desired == nil {
		return nil
	}
	sourceHash := sandboxPolicyHash(desired)
	if policyConverged(obs.Policy, sourceHash, obs.ActivePolicyVersion) {
		// Nothing moved on either side since the last full check: no gateway read.
		obs.PolicyVersion = obs.Policy.Version
		return nil
	}
	latest, err := gw.GetStatus(ctx, refs.Name, 0)
	if err != nil && !gateway.IsNotFound(err) {
		return err
	}
	live := cur.GetSpec().GetPolicy()
	if latest.GetRevision() != nil {
		live = latest.GetRevision().GetPolicy()
		obs.ActivePolicyVersion = latest.GetActiveVersion()
	}
	if !proto.Equal(normalizeSandboxPolicy(live), normalizeSandboxPolicy(desired)) {
		resp, err := gw.Update(ctx, refs.Name, desired)
		switch {
		case gateway.IsFailedPrecondition(err):
			// Clears when the global policy is deleted, which re-enqueues the sandbox.
			return withReason(fmt.Errorf("%w: %w", errGlobalPolicyActive, err), v1alpha1.ReasonGlobalPolicyActive, retryDependency)
		case gateway.IsInvalidArgument(err):
			return withReason(fmt.Errorf("%w: %w", errPolicyRejected, err), v1alpha1.ReasonPolicyRejected, retryOnChange)
		case err != nil:
			return err
		}
		obs.Policy = &v1alpha1.SandboxPolicyState{Version: resp.GetVersion(), Hash: resp.GetPolicyHash(),
			Status: v1alpha1.PolicyLoadPending, SourceHash: sourceHash}
		record(r.Recorder, sb, corev1.EventTypeNormal, eventPolicyUpdated, "pushed policy version %d", resp.GetVersion())
		obs.PolicyVersion = resp.GetVersion()
		latest, err = gw.GetStatus(ctx, refs.Name, resp.GetVersion())
		if err != nil {
			return err
		}
	}
	if obs.Policy == nil {
		obs.Policy = &v1alpha1.SandboxPolicyState{}
	}
	// Live equals desired here, so the sandbox runs (or was sent) this policy.
	obs.Policy.SourceHash = sourceHash
	if v := latest.GetRevision().GetVersion(); obs.HasProposals && v > obs.PolicyVersion {
		// The gateway made this version itself, approving or undoing a PolicyProposal: it is
		// the desired policy, so its load state is the sandbox's.
		obs.Policy.Version, obs.Policy.Hash, obs.Policy.Status = v, latest.GetRevision().GetPolicyHash(), v1alpha1.PolicyLoadPending
		obs.PolicyVersion = v
	}
	if obs.PolicyVersion == 0 {
		return nil
	}
	if latest.GetRevision().GetVersion() != obs.PolicyVersion {
		if latest, err = gw.GetStatus(ctx, refs.Name, obs.PolicyVersion); err != nil {
			return err
		}
	}
	obs.PolicyRevision = latest.GetRevision()
	obs.ActivePolicyVersion = latest.GetActiveVersion()
	return nil
}

// desiredSpec resolves providers and the policy; unresolved ones are DependencyNotReady. It
// also returns the spec's policy in the CRD's shape, into which update merges the approved
// rules (the spec holds none of them: a new gateway sandbox has no approved chunks).
func (r *SandboxReconciler) desiredSpec(ctx context.Context, sb *v1alpha1.Sandbox, obs *sandboxObservation, gwProviders providerGateway, connection string) (*openshellv1.SandboxSpec, *v1alpha1.SandboxPolicySpec, *failure) {
	providers := map[string]*v1alpha1.Provider{}
	for _, n := range sb.Spec.Providers {
		p := &v1alpha1.Provider{}
		err := r.Get(ctx, types.NamespacedName{Namespace: sb.Namespace, Name: n}, p)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, failed(v1alpha1.ReasonProgressing, fmt.Sprintf("reading provider %q: %v", n, err), retryBackoff)
		}
		providers[n] = p
	}
	var names, notReady []string
	for _, n := range sb.Spec.Providers {
		p, ok := providers[n]
		if !ok {
			notReady = append(notReady, n)
			continue
		}
		name, why, err := attachProvider(ctx, gwProviders, r.View, p, connection)
		if err != nil {
			return nil, nil, gatewayFailure("get provider", err)
		}
		if why != "" {
			notReady = append(notReady, n)
			continue
		}
		names = append(names, name)
	}
	if len(notReady) > 0 {
		return nil, nil, failed(v1alpha1.ReasonDependencyNotReady, "providers not ready on the gateway: "+strings.Join(notReady, ", "), retryDependency)
	}
	policySpec := sb.Spec.Policy
	if sb.Spec.PolicyRef != nil {
		sp := &v1alpha1.SandboxPolicy{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: sb.Namespace, Name: sb.Spec.PolicyRef.Name}, sp); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil, failed(v1alpha1.ReasonDependencyNotReady,
					fmt.Sprintf("SandboxPolicy %q not found; a running sandbox keeps its last policy", sb.Spec.PolicyRef.Name), retryDependency)
			}
			return nil, nil, failed(v1alpha1.ReasonProgressing, fmt.Sprintf("reading SandboxPolicy %q: %v", sb.Spec.PolicyRef.Name, err), retryBackoff)
		}
		policySpec = &sp.Spec
	}
	if f := r.listProposals(ctx, sb, obs); f != nil {
		return nil, nil, f
	}
	policy, err := sandboxPolicyToGateway(policySpec)
	if err != nil {
		return nil, nil, failed(v1alpha1.ReasonInvalidSpec, "desired spec: "+err.Error(), retryOnChange)
	}
	spec, err := sandboxDesiredSpec(sb, names, policy)
	if err != nil {
		return nil, nil, failed(v1alpha1.ReasonInvalidSpec, "desired spec: "+err.Error(), retryOnChange)
	}
	return spec, policySpec, nil
}

// finalize deletes the gateway sandbox (policy Delete) and releases the finalizer only
// once the gateway reports it gone.
func (r *SandboxReconciler) finalize(ctx context.Context, sb *v1alpha1.Sandbox) step {
	refs := refsOf(sb)
	release := step{Release: true}
	if sb.Spec.DeletionPolicy == v1alpha1.DeletionPolicyOrphan {
		r.View.Settle(refs.Connection, refs.Name)
		return release
	}
	obs := newObservation(sb, refs)
	gw, err := r.Gateways.Get(refs.Connection)
	switch {
	case err != nil && neverReachedGateway(ctx, r.Client, sb.Spec.GatewayRef, sb.Status.SandboxID):
		return release
	case err != nil:
		obs.Failure = failed(v1alpha1.ReasonDependencyNotReady,
			fmt.Sprintf("GatewayConnection %q: %v; keeping the finalizer", refs.Connection, err), retryDependency)
	default:
		cur, err := gw.Sandboxes.Get(ctx, refs.Name)
		switch {
		case gateway.IsNotFound(err):
			record(r.Recorder, sb, corev1.EventTypeNormal, eventDeleted, "gateway sandbox %s is gone", refs.Name)
			r.View.Settle(refs.Connection, refs.Name)
			return release
		case err != nil:
			obs.Failure = gatewayFailure("get sandbox; keeping the finalizer", err)
		case !OwnedBy(cur.GetMetadata().GetLabels(), sb):
			// Not ours: never delete it.
			r.View.Settle(refs.Connection, refs.Name)
			return release
		default:
			obs.Sandbox, obs.ID, obs.Deleting = cur, cur.GetMetadata().GetId(), true
			if cur.GetStatus().GetPhase() != openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING {
				if _, err := gw.Sandboxes.Delete(ctx, refs.Name); err != nil && !gateway.IsNotFound(err) {
					obs.Failure = gatewayFailure("delete sandbox; keeping the finalizer", err)
				}
			}
		}
	}
	d := r.derive(sb, obs)
	st := step{outcome: d.Outcome, Failure: obs.Failure}
	if obs.Failure == nil || obs.Failure.Retry != retryBackoff {
		st.RequeueAfter = r.transitional()
	}
	return st
}

// getSandbox reads the gateway sandbox from the observed view when it can. The gateway is
// asked directly without a view, while the view is not synced, and when the view lacks a
// sandbox that status says exists (confirm before healing).
func (r *SandboxReconciler) getSandbox(ctx context.Context, gw gatewayAPI, sb *v1alpha1.Sandbox, refs sandboxRefs) (_ *openshellv1.Sandbox, fromView bool, _ error) {
	cur, synced := r.View.Lookup(refs.Connection, refs.Name)
	switch {
	case cur != nil:
		return cur, true, nil
	case synced && sb.Status.SandboxID == "":
		return nil, true, errNotObserved
	}
	cur, err := gw.Sandboxes.Get(ctx, refs.Name)
	if err == nil {
		r.View.Record(refs.Connection, cur)
	}
	return cur, false, err
}

// currentForRecreate re-reads a gateway sandbox seen in the view before it is deleted for a
// recreate. A recreate deletes by name, so it must be decided on what the gateway holds now:
// a former leader resuming from a pause has a view that missed the current leader's recreate,
// and deleting for the old sandbox's drift would remove the new one (found by the soak). ok
// false: the view was behind; the fresh sandbox is recorded and the reconcile looks again.
func (r *SandboxReconciler) currentForRecreate(ctx context.Context, gw gatewayAPI, refs sandboxRefs, cur *openshellv1.Sandbox) (ok bool, _ error) {
	fresh, err := gw.Sandboxes.Get(ctx, refs.Name)
	if err != nil {
		return false, err
	}
	if fresh.GetMetadata().GetId() == cur.GetMetadata().GetId() &&
		fresh.GetMetadata().GetResourceVersion() == cur.GetMetadata().GetResourceVersion() {
		return true, nil
	}
	r.View.Record(refs.Connection, fresh)
	return false, nil
}

// errNotObserved is a NOT_FOUND answered by the synced view, without a gateway call.
var errNotObserved = status.Error(codes.NotFound, "not in the observed gateway view")

// requeueAfter picks the next look. With a watching view, converged sandboxes are settled
// (their stream closed) and transitional ones followed by a stream, so requeues are only a
// safety net; policy loads are polled because a FAILED load changes no sandbox field to
// stream.
func (r *SandboxReconciler) requeueAfter(refs sandboxRefs, d sandboxDerivedStatus) time.Duration {
	o := d.Outcome
	converged := o.Ready || o.Stalled
	if !r.View.Watching() {
		if converged {
			return r.resync()
		}
		return r.transitional()
	}
	switch {
	case converged:
		r.View.Settle(refs.Connection, refs.Name)
		return r.resync()
	case o.Reason == v1alpha1.ReasonPolicyPending:
		return r.transitional()
	case d.Status.SandboxID != "" && (o.Reason == v1alpha1.ReasonProvisioning || o.Reason == v1alpha1.ReasonDeleting ||
		o.Reason == v1alpha1.ReasonRecreating || o.Reason == v1alpha1.ReasonSandboxError):
		r.View.Await(refs.Connection, refs.Namespace, refs.Name, d.Status.SandboxID)
		return safetyRequeue
	}
	return r.transitional()
}

// policyConverged: the recorded policy state is for this exact desired policy and the
// sandbox's active version has not moved since the last full check.
func policyConverged(st *v1alpha1.SandboxPolicyState, sourceHash string, active uint32) bool {
	if st == nil || st.SourceHash != sourceHash || st.ActiveVersion != active {
		return false
	}
	return st.Version == 0 || (st.Status == v1alpha1.PolicyLoadLoaded && st.Version == active)
}

func policyVersion(sb *v1alpha1.Sandbox) uint32 {
	if sb.Status.Policy == nil {
		return 0
	}
	return sb.Status.Policy.Version
}

// globalPolicyVersion is the global policy version the sandbox's GatewayConnection applied
// (0 when none, or when the connection cannot be read).
func (r *SandboxReconciler) globalPolicyVersion(ctx context.Context, connection string) uint32 {
	gc := &v1alpha1.GatewayConnection{}
	if err := r.Get(ctx, types.NamespacedName{Name: connection}, gc); err != nil {
		return 0
	}
	return gc.Status.GlobalPolicyVersion
}

// connectionReadinessChanged passes GatewayConnection events that can change what a sandbox
// sees (readiness flips, a global policy applied or removed), not other status writes.
var connectionReadinessChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.GatewayConnection)
		n, ok2 := e.ObjectNew.(*v1alpha1.GatewayConnection)
		if !ok1 || !ok2 {
			return true
		}
		return meta.IsStatusConditionTrue(o.Status.Conditions, v1alpha1.ConditionReady) !=
			meta.IsStatusConditionTrue(n.Status.Conditions, v1alpha1.ConditionReady) ||
			o.Status.GlobalPolicyVersion != n.Status.GlobalPolicyVersion
	},
}

// SetupWithManager registers the controller, its field indexes and watches.
func (r *SandboxReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.View == nil {
		r.View = pollView{}
	}
	k := newKernel(r.Client, kindSandbox, func() *v1alpha1.Sandbox { return &v1alpha1.Sandbox{} }, kindSteps[*v1alpha1.Sandbox](r),
		r.Recorder, true, r.Backoff, r.transitional())
	k.Reader = mgr.GetAPIReader()
	k.Uses = func(_ context.Context, sb *v1alpha1.Sandbox) (gatewayUse, bool) {
		return gatewayUse{Connection: gatewayRefName(sb.Spec.GatewayRef)}, true
	}
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &v1alpha1.Sandbox{}, sandboxProviderIndex, func(o client.Object) []string {
		return o.(*v1alpha1.Sandbox).Spec.Providers
	}); err != nil {
		return fmt.Errorf("index sandbox providers: %w", err)
	}
	if err := idx.IndexField(ctx, &v1alpha1.Sandbox{}, sandboxPolicyIndex, func(o client.Object) []string {
		if ref := o.(*v1alpha1.Sandbox).Spec.PolicyRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("index sandbox policyRef: %w", err)
	}
	if err := idx.IndexField(ctx, &v1alpha1.Sandbox{}, sandboxGatewayIndex, func(o client.Object) []string {
		return []string{gatewayRefName(o.(*v1alpha1.Sandbox).Spec.GatewayRef)}
	}); err != nil {
		return fmt.Errorf("index sandbox gatewayRef: %w", err)
	}
	byIndex := func(index string, namespaced bool) handler.MapFunc {
		return func(ctx context.Context, o client.Object) []reconcile.Request {
			opts := []client.ListOption{client.MatchingFields{index: o.GetName()}}
			if namespaced {
				opts = append(opts, client.InNamespace(o.GetNamespace()))
			}
			return listRequests(ctx, r, &v1alpha1.SandboxList{}, nil, opts...)
		}
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Sandbox{}).
		Watches(&v1alpha1.Provider{}, handler.EnqueueRequestsFromMapFunc(byIndex(sandboxProviderIndex, true))).
		Watches(&v1alpha1.SandboxPolicy{}, handler.EnqueueRequestsFromMapFunc(byIndex(sandboxPolicyIndex, true))).
		Watches(&v1alpha1.PolicyProposal{}, handler.EnqueueRequestsFromMapFunc(proposalSandbox)).
		Watches(&v1alpha1.GatewayConnection{}, handler.EnqueueRequestsFromMapFunc(byIndex(sandboxGatewayIndex, false)),
			builder.WithPredicates(connectionReadinessChanged)).
		WithOptions(controllerOptions(r.Backoff, r.MaxConcurrentReconciles)).
		Named("sandbox")
	if r.ViewEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.ViewEvents, enqueueObserved))
	}
	b = watchAdmission(b, r.Client, func() client.ObjectList { return &v1alpha1.SandboxList{} })
	return b.Complete(k)
}
