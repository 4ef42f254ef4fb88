package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
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

// Event reasons for actions (failures use the condition reason).
const (
	sandboxEventCreated       = "Created"
	sandboxEventRecreated     = "Recreated"
	sandboxEventDeleted       = "Deleted"
	sandboxEventHealed        = "Healed"
	sandboxEventPolicyUpdated = "PolicyUpdated"
)

// SandboxReconciler reconciles Sandbox resources into OpenShell gateway sandboxes.
type SandboxReconciler struct {
	client.Client
	Gateways gatewayClients
	Recorder eventRecorder
	// Transitional is the requeue interval while a sandbox is provisioning or deleting.
	Transitional time.Duration
	mirror       sandboxEventMirror
	// Resync is the requeue interval once converged. With a View it reads only the view
	// (no gateway call); without one it is a GetSandbox that notices gateway-side changes
	// (ERROR, out-of-band deletes). Default one minute.
	Resync time.Duration
	// View is the per-gateway observation (list + watch) read instead of GetSandbox; nil
	// selects per-object polling.
	View sandboxView
	// ViewEvents delivers the sandboxes whose observed state changed.
	ViewEvents <-chan event.GenericEvent
	// MaxConcurrentReconciles (default 1, controller-runtime's default).
	MaxConcurrentReconciles int
	// Backoff spaces the retries of a sandbox whose gateway calls keep failing.
	Backoff Backoff
	// retries spaces the retries of failed reconciles (Backoff per object); set up with the
	// controller.
	retries workqueue.TypedRateLimiter[reconcile.Request]
}

// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxes/finalizers,verbs=update
// +kubebuilder:rbac:groups=openshell.dev,resources=providers;sandboxpolicies;gatewayconnections,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// eventf records an event; a reconciler built without a recorder records none.
func (r *SandboxReconciler) eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, eventtype, reason, format, args...)
	}
}

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

// sandboxGatewayName is the deterministic gateway name of a Sandbox.
func sandboxGatewayName(sb *v1alpha1.Sandbox) string {
	return GatewayName(sb.Namespace, sb.Name)
}

// classifySandboxError turns a gateway or dependency error into a condition.
func classifySandboxError(what string, err error) *sandboxFailure {
	msg := gateway.Message(err)
	if msg == "" {
		msg = err.Error()
	}
	msg = what + ": " + msg
	switch {
	case errors.Is(err, errSandboxDependency):
		return &sandboxFailure{Reason: v1alpha1.ReasonDependencyNotReady, Message: err.Error()}
	case errors.Is(err, errGlobalPolicyActive):
		// Clears when the global policy is deleted, which re-enqueues the sandbox.
		return &sandboxFailure{Reason: v1alpha1.ReasonGlobalPolicyActive, Message: msg}
	case errors.Is(err, errPolicyRejected):
		return &sandboxFailure{Reason: v1alpha1.ReasonPolicyRejected, Message: msg, Terminal: true}
	case gateway.IsUnauthenticated(err) || gateway.IsPermissionDenied(err):
		return &sandboxFailure{Reason: v1alpha1.ReasonAuthenticationFailed, Message: msg}
	case gateway.IsRetryable(err) || gateway.IsConflict(err):
		return &sandboxFailure{Reason: v1alpha1.ReasonGatewayUnavailable, Message: msg}
	case gateway.IsFailedPrecondition(err):
		// A missing provider or GPU capacity can resolve by itself.
		return &sandboxFailure{Reason: v1alpha1.ReasonGatewayRejected, Message: msg}
	default:
		return &sandboxFailure{Reason: v1alpha1.ReasonGatewayRejected, Message: msg, Terminal: true}
	}
}

var (
	errSandboxDependency = errors.New("dependency not ready")
	// errGlobalPolicyActive: the gateway refuses sandbox policy updates while a global
	// policy exists (the only FAILED_PRECONDITION of a sandbox-scoped policy update).
	errGlobalPolicyActive = errors.New("a global policy is active")
	// errPolicyRejected: the gateway refused the policy itself (INVALID_ARGUMENT).
	errPolicyRejected = errors.New("policy rejected")
)

// Reconcile observes the gateway sandbox, then creates, updates in place, recreates or
// does nothing, then writes status once.
func (r *SandboxReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	sb := &v1alpha1.Sandbox{}
	if err := r.Get(ctx, req.NamespacedName, sb); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !sb.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, sb)
	}
	if !controllerutil.ContainsFinalizer(sb, v1alpha1.Finalizer) {
		controllerutil.AddFinalizer(sb, v1alpha1.Finalizer)
		if err := r.Update(ctx, sb); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
	}
	orig := sb.DeepCopy()
	obs, result := r.observeAndAct(ctx, sb)
	d := deriveSandboxStatus(obs)
	if err := r.writeStatus(ctx, orig, sb, obs, d); err != nil {
		return ctrl.Result{}, err
	}
	if obs.Failure != nil && sandboxReason(orig) != obs.Failure.Reason {
		// One event per transition into a failure, not one per retry.
		r.eventf(sb, "Warning", obs.Failure.Reason, "%s", obs.Failure.Message)
	}
	switch {
	case obs.Failure == nil:
		r.retries.Forget(req)
	case !obs.Failure.Terminal && result.RequeueAfter == 0:
		// Retried with exponential backoff, like a returned error, without logging one
		// error per sandbox and retry during an outage: the condition says it once.
		result.RequeueAfter = r.retries.When(req)
	}
	if result.RequeueAfter == 0 {
		result.RequeueAfter = r.requeueAfter(sb, d)
	}
	log.V(1).Info("reconciled sandbox", "phase", d.Phase, "reason", d.Reason, "requeueAfter", result.RequeueAfter)
	return result, nil
}

// observeAndAct performs at most the gateway calls needed and fills the observation.
func (r *SandboxReconciler) observeAndAct(ctx context.Context, sb *v1alpha1.Sandbox) (sandboxObservation, ctrl.Result) {
	var obs sandboxObservation
	fail := func(what string, err error) (sandboxObservation, ctrl.Result) {
		obs.Failure = classifySandboxError(what, err)
		return obs, ctrl.Result{}
	}
	name := sandboxGatewayName(sb)
	gw, err := r.Gateways.Get(gatewayRefName(sb.Spec.GatewayRef))
	if err != nil {
		return fail("gateway connection", fmt.Errorf("%w: GatewayConnection %q: %v", errSandboxDependency, gatewayRefName(sb.Spec.GatewayRef), err))
	}
	desired, err := r.desiredSpec(ctx, sb)
	if err != nil {
		return fail("desired spec", err)
	}
	obs.PolicyVersion = policyVersion(sb)
	obs.GlobalPolicyVersion = r.globalPolicyVersion(ctx, sb)

	cur, err := r.getSandbox(ctx, gw, sb, name)
	switch {
	case gateway.IsNotFound(err):
		return r.create(ctx, gw, sb, name, desired)
	case err != nil:
		return fail("get sandbox", err)
	}
	obs.Sandbox = cur
	if !OwnedBy(cur.GetMetadata().GetLabels(), sb) {
		obs.Sandbox = nil
		obs.Failure = &sandboxFailure{Reason: v1alpha1.ReasonConflict, Terminal: true,
			Message: fmt.Sprintf("gateway sandbox %q exists and is not owned by this resource; it is left untouched", name)}
		return obs, ctrl.Result{RequeueAfter: r.resync()}
	}
	sb.Status.SandboxID = cur.GetMetadata().GetId()
	r.mirrorPlatformEvents(ctx, gw, sb, cur, sb.Status.Phase == v1alpha1.SandboxPhaseReady)
	if cur.GetStatus().GetPhase() == openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING {
		obs.Recreating = sandboxReason(sb) == v1alpha1.ReasonRecreating
		return obs, ctrl.Result{RequeueAfter: r.transitional()}
	}

	diff := diffSandboxSpec(desired, cur.GetSpec())
	if diff.NeedsRecreate() {
		if sb.Spec.UpdateStrategy == v1alpha1.UpdateStrategyOnDelete {
			obs.RecreatePending, obs.RecreateReasons = true, diff.Recreate
			obs.ProvidersAttached = !diff.InPlace()
			return obs, ctrl.Result{}
		}
		if _, err := gw.Sandboxes.Delete(ctx, name); err != nil && !gateway.IsNotFound(err) {
			return fail("delete sandbox for recreate", err)
		}
		r.await(sb, name, cur.GetMetadata().GetId())
		obs.Recreating = true
		return obs, ctrl.Result{RequeueAfter: r.transitional()}
	}
	obs.SpecInSync = true
	for _, p := range diff.Attach {
		if cur, _, err = gw.Sandboxes.AttachProvider(ctx, name, p, 0); err != nil {
			return fail(fmt.Sprintf("attach provider %q", p), err)
		}
	}
	for _, p := range diff.Detach {
		if cur, _, err = gw.Sandboxes.DetachProvider(ctx, name, p, 0); err != nil {
			return fail(fmt.Sprintf("detach provider %q", p), err)
		}
	}
	if len(diff.Attach)+len(diff.Detach) > 0 {
		r.record(sb, cur)
	}
	obs.Sandbox = cur
	obs.ProvidersAttached = true
	if err := r.syncPolicy(ctx, gw, sb, name, desired.GetPolicy(), cur, &obs); err != nil {
		obs, res := fail("policy", err)
		if errors.Is(err, errGlobalPolicyActive) {
			// Retrying sooner would only repeat a refused write.
			res.RequeueAfter = r.resync()
		}
		return obs, res
	}
	return obs, ctrl.Result{}
}

// create creates the gateway sandbox; a sandboxID in status means it vanished (heal).
func (r *SandboxReconciler) create(ctx context.Context, gw *gateway.Client, sb *v1alpha1.Sandbox, name string, desired *openshellv1.SandboxSpec) (sandboxObservation, ctrl.Result) {
	var obs sandboxObservation
	created, err := gw.Sandboxes.Create(ctx, name, desired, OwnershipLabels(sb))
	if gateway.IsAlreadyExists(err) {
		// Lost a race with ourselves or someone else (or a crash before the status write):
		// read it so the next reconcile does not rely on a view that missed it.
		if cur, err := gw.Sandboxes.Get(ctx, name); err == nil {
			r.record(sb, cur)
		}
		return obs, ctrl.Result{RequeueAfter: r.transitional()}
	}
	if err != nil {
		obs.Failure = classifySandboxError("create sandbox", err)
		return obs, ctrl.Result{}
	}
	switch {
	case sandboxReason(sb) == v1alpha1.ReasonRecreating:
		r.eventf(sb, "Normal", sandboxEventRecreated, "recreated gateway sandbox %s (id %s)", name, created.GetMetadata().GetId())
	case sb.Status.SandboxID != "":
		r.eventf(sb, "Warning", sandboxEventHealed, "gateway sandbox %s (id %s) was gone; created it again (id %s)", name, sb.Status.SandboxID, created.GetMetadata().GetId())
	default:
		r.eventf(sb, "Normal", sandboxEventCreated, "created gateway sandbox %s (id %s)", name, created.GetMetadata().GetId())
	}
	sb.Status.SandboxID = created.GetMetadata().GetId()
	r.record(sb, created)
	r.await(sb, name, created.GetMetadata().GetId())
	// A new sandbox starts from the spec's policy baseline; earlier revisions are gone.
	sb.Status.Policy = nil
	if desired.GetPolicy() != nil {
		sb.Status.Policy = &v1alpha1.SandboxPolicyState{SourceHash: sandboxPolicyHash(desired.GetPolicy())}
	}
	obs.Sandbox, obs.SpecInSync, obs.ProvidersAttached = created, true, true
	return obs, ctrl.Result{RequeueAfter: r.transitional()}
}

// syncPolicy pushes the desired policy when the live one (latest revision, or the
// create-time baseline when there are none) differs, then reads its load status.
func (r *SandboxReconciler) syncPolicy(ctx context.Context, gw *gateway.Client, sb *v1alpha1.Sandbox, name string, desired *sandboxv1.SandboxPolicy, cur *openshellv1.Sandbox, obs *sandboxObservation) error {
	obs.ActivePolicyVersion = cur.GetStatus().GetCurrentPolicyVersion()
	if desired == nil {
		return nil
	}
	sourceHash := sandboxPolicyHash(desired)
	if policyConverged(sb.Status.Policy, sourceHash, obs.ActivePolicyVersion) {
		// Nothing moved on either side since the last full check: no gateway read.
		obs.PolicyVersion = sb.Status.Policy.Version
		return nil
	}
	latest, err := gw.Policies.GetStatus(ctx, name, 0)
	if err != nil && !gateway.IsNotFound(err) {
		return err
	}
	live := cur.GetSpec().GetPolicy()
	if latest.GetRevision() != nil {
		live = latest.GetRevision().GetPolicy()
		obs.ActivePolicyVersion = latest.GetActiveVersion()
	}
	if !proto.Equal(normalizeSandboxPolicy(live), normalizeSandboxPolicy(desired)) {
		resp, err := gw.Policies.Update(ctx, name, desired)
		switch {
		case gateway.IsFailedPrecondition(err):
			return fmt.Errorf("%w: %w", errGlobalPolicyActive, err)
		case gateway.IsInvalidArgument(err):
			return fmt.Errorf("%w: %w", errPolicyRejected, err)
		case err != nil:
			return err
		}
		sb.Status.Policy = &v1alpha1.SandboxPolicyState{Version: resp.GetVersion(), Hash: resp.GetPolicyHash(),
			Status: v1alpha1.PolicyLoadPending, SourceHash: sourceHash}
		r.eventf(sb, "Normal", sandboxEventPolicyUpdated, "pushed policy version %d", resp.GetVersion())
		obs.PolicyVersion = resp.GetVersion()
		latest, err = gw.Policies.GetStatus(ctx, name, resp.GetVersion())
		if err != nil {
			return err
		}
	}
	if sb.Status.Policy == nil {
		sb.Status.Policy = &v1alpha1.SandboxPolicyState{}
	}
	// Live equals desired here, so the sandbox runs (or was sent) this policy.
	sb.Status.Policy.SourceHash = sourceHash
	if obs.PolicyVersion == 0 {
		return nil
	}
	if latest.GetRevision().GetVersion() != obs.PolicyVersion {
		if latest, err = gw.Policies.GetStatus(ctx, name, obs.PolicyVersion); err != nil {
			return err
		}
	}
	obs.PolicyRevision = latest.GetRevision()
	obs.ActivePolicyVersion = latest.GetActiveVersion()
	return nil
}

// desiredSpec resolves providers and the policy; unresolved ones are DependencyNotReady.
func (r *SandboxReconciler) desiredSpec(ctx context.Context, sb *v1alpha1.Sandbox) (*openshellv1.SandboxSpec, error) {
	providers := map[string]*v1alpha1.Provider{}
	for _, n := range sb.Spec.Providers {
		p := &v1alpha1.Provider{}
		err := r.Get(ctx, types.NamespacedName{Namespace: sb.Namespace, Name: n}, p)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get provider %q: %w", n, err)
		}
		providers[n] = p
	}
	names, notReady := resolveSandboxProviders(sb.Spec.Providers, providers)
	if len(notReady) > 0 {
		return nil, fmt.Errorf("%w: providers not ready on the gateway: %s", errSandboxDependency, strings.Join(notReady, ", "))
	}
	policySpec := sb.Spec.Policy
	if sb.Spec.PolicyRef != nil {
		sp := &v1alpha1.SandboxPolicy{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: sb.Namespace, Name: sb.Spec.PolicyRef.Name}, sp); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("%w: SandboxPolicy %q not found; a running sandbox keeps its last policy", errSandboxDependency, sb.Spec.PolicyRef.Name)
			}
			return nil, fmt.Errorf("get sandbox policy %q: %w", sb.Spec.PolicyRef.Name, err)
		}
		policySpec = &sp.Spec
	}
	policy, err := sandboxPolicyToGateway(policySpec)
	if err != nil {
		return nil, err
	}
	return sandboxDesiredSpec(sb, names, policy)
}

// finalize deletes the gateway sandbox (policy Delete) and releases the finalizer only
// once the gateway reports it gone.
func (r *SandboxReconciler) finalize(ctx context.Context, sb *v1alpha1.Sandbox) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(sb, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	release := func() (ctrl.Result, error) {
		if r.View != nil {
			r.View.Settle(gatewayRefName(sb.Spec.GatewayRef), sandboxGatewayName(sb))
		}
		controllerutil.RemoveFinalizer(sb, v1alpha1.Finalizer)
		if err := r.Update(ctx, sb); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("remove finalizer: %w", err)
		}
		return ctrl.Result{}, nil
	}
	if sb.Spec.DeletionPolicy == v1alpha1.DeletionPolicyOrphan {
		return release()
	}
	orig := sb.DeepCopy()
	var obs sandboxObservation
	result := ctrl.Result{RequeueAfter: r.transitional()}
	name := sandboxGatewayName(sb)
	gw, err := r.Gateways.Get(gatewayRefName(sb.Spec.GatewayRef))
	if err != nil && neverReachedGateway(ctx, r.Client, sb.Spec.GatewayRef, sb.Status.SandboxID) {
		return release()
	}
	if err != nil {
		obs.Failure = classifySandboxError("gateway connection",
			fmt.Errorf("%w: GatewayConnection %q: %v; keeping the finalizer", errSandboxDependency, gatewayRefName(sb.Spec.GatewayRef), err))
	} else {
		cur, err := gw.Sandboxes.Get(ctx, name)
		switch {
		case gateway.IsNotFound(err):
			r.eventf(sb, "Normal", sandboxEventDeleted, "gateway sandbox %s is gone", name)
			return release()
		case err != nil:
			obs.Failure = classifySandboxError("get sandbox; keeping the finalizer", err)
		case !OwnedBy(cur.GetMetadata().GetLabels(), sb):
			// Not ours: never delete it.
			return release()
		default:
			obs.Sandbox = cur
			if cur.GetStatus().GetPhase() != openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING {
				if _, err := gw.Sandboxes.Delete(ctx, name); err != nil && !gateway.IsNotFound(err) {
					obs.Failure = classifySandboxError("delete sandbox; keeping the finalizer", err)
				}
			}
			if obs.Failure == nil {
				obs.Failure = &sandboxFailure{Reason: v1alpha1.ReasonDeleting, Message: "waiting for the gateway to delete the sandbox"}
			}
		}
	}
	d := deriveSandboxStatus(obs)
	if err := r.writeStatus(ctx, orig, sb, obs, d); err != nil {
		return ctrl.Result{}, err
	}
	return result, nil
}

// writeStatus patches status once, and only when something changed.
func (r *SandboxReconciler) writeStatus(ctx context.Context, orig, sb *v1alpha1.Sandbox, obs sandboxObservation, d sandboxDerivedStatus) error {
	recordSandboxOutcome(obs, d)
	st := &sb.Status
	if obs.Sandbox != nil {
		st.Phase = v1alpha1.SandboxPhase(d.Phase)
		st.GatewayName = obs.Sandbox.GetMetadata().GetName()
		st.Providers = slices.Clone(obs.Sandbox.GetSpec().GetProviders())
		slices.Sort(st.Providers)
	} else if obs.Failure == nil || obs.Failure.Reason == v1alpha1.ReasonConflict {
		st.Phase = v1alpha1.SandboxPhase(d.Phase)
	}
	if st.GatewayName == "" {
		st.GatewayName = sandboxGatewayName(sb)
	}
	if st.Policy != nil && obs.Failure == nil && obs.Sandbox != nil {
		st.Policy.ActiveVersion = obs.ActivePolicyVersion
	}
	if st.Policy != nil && obs.PolicyVersion != 0 && obs.Failure == nil {
		st.Policy.Status = v1alpha1.PolicyLoadStatus(d.PolicyStatus)
		st.Policy.LoadError = d.PolicyError
		if obs.PolicyRevision.GetPolicyHash() != "" {
			st.Policy.Hash = obs.PolicyRevision.GetPolicyHash()
		}
	}
	if obs.Failure == nil || obs.Failure.Reason == v1alpha1.ReasonGlobalPolicyActive {
		if st.Policy == nil && obs.GlobalPolicyVersion != 0 {
			st.Policy = &v1alpha1.SandboxPolicyState{}
		}
		if st.Policy != nil {
			st.Policy.GlobalPolicyVersion = obs.GlobalPolicyVersion
		}
	}
	// Stalled counts as processed: kstatus then reports Failed for this generation rather
	// than InProgress forever.
	if d.GenerationApplied || d.Stalled {
		st.ObservedGeneration = sb.Generation
	}
	cond := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: sb.Generation})
	}
	boolStatus := func(b bool) metav1.ConditionStatus {
		if b {
			return metav1.ConditionTrue
		}
		return metav1.ConditionFalse
	}
	cond(v1alpha1.ConditionReady, d.Ready, d.Reason, d.Message)
	cond(v1alpha1.ConditionReconciling, boolStatus(d.Reconciling), d.Reason, d.Message)
	cond(v1alpha1.ConditionStalled, boolStatus(d.Stalled), d.Reason, d.Message)
	if equality.Semantic.DeepEqual(orig.Status, sb.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, sb, client.MergeFrom(orig)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patch sandbox status: %w", err)
	}
	return nil
}

// getSandbox reads the gateway sandbox from the observed view when it can. The gateway is
// asked directly without a view, while the view is not synced, and when the view lacks a
// sandbox that status says exists (confirm before healing).
func (r *SandboxReconciler) getSandbox(ctx context.Context, gw *gateway.Client, sb *v1alpha1.Sandbox, name string) (*openshellv1.Sandbox, error) {
	if r.View != nil {
		cur, synced := r.View.Lookup(gatewayRefName(sb.Spec.GatewayRef), name)
		switch {
		case cur != nil:
			return cur, nil
		case synced && sb.Status.SandboxID == "":
			return nil, errNotObserved
		}
	}
	cur, err := gw.Sandboxes.Get(ctx, name)
	if err == nil {
		r.record(sb, cur)
	}
	return cur, err
}

// errNotObserved is a NOT_FOUND answered by the synced view, without a gateway call.
var errNotObserved = status.Error(codes.NotFound, "not in the observed gateway view")

func (r *SandboxReconciler) record(sb *v1alpha1.Sandbox, cur *openshellv1.Sandbox) {
	if r.View != nil {
		r.View.Record(gatewayRefName(sb.Spec.GatewayRef), cur)
	}
}

func (r *SandboxReconciler) await(sb *v1alpha1.Sandbox, name, id string) {
	if r.View != nil {
		r.View.Await(gatewayRefName(sb.Spec.GatewayRef), name, id)
	}
}

// requeueAfter picks the next look. With a view, converged sandboxes are settled (their
// stream closed) and transitional ones followed by a stream, so requeues are only a safety
// net; policy loads are polled because a FAILED load changes no sandbox field to stream.
func (r *SandboxReconciler) requeueAfter(sb *v1alpha1.Sandbox, d sandboxDerivedStatus) time.Duration {
	converged := d.Ready == metav1.ConditionTrue || d.Stalled
	if r.View == nil {
		if converged {
			return r.resync()
		}
		return r.transitional()
	}
	gwName, name := gatewayRefName(sb.Spec.GatewayRef), sandboxGatewayName(sb)
	switch {
	case converged:
		r.View.Settle(gwName, name)
		return r.resync()
	case d.Reason == v1alpha1.ReasonPolicyPending:
		return r.transitional()
	case sb.Status.SandboxID != "" && (d.Reason == v1alpha1.ReasonProvisioning || d.Reason == v1alpha1.ReasonDeleting ||
		d.Reason == v1alpha1.ReasonRecreating || d.Reason == v1alpha1.ReasonSandboxError):
		r.View.Await(gwName, name, sb.Status.SandboxID)
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

func sandboxReason(sb *v1alpha1.Sandbox) string {
	if c := meta.FindStatusCondition(sb.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

func policyVersion(sb *v1alpha1.Sandbox) uint32 {
	if sb.Status.Policy == nil {
		return 0
	}
	return sb.Status.Policy.Version
}

// globalPolicyVersion is the global policy version the sandbox's GatewayConnection applied
// (0 when none, or when the connection cannot be read).
func (r *SandboxReconciler) globalPolicyVersion(ctx context.Context, sb *v1alpha1.Sandbox) uint32 {
	gc := &v1alpha1.GatewayConnection{}
	if err := r.Get(ctx, types.NamespacedName{Name: gatewayRefName(sb.Spec.GatewayRef)}, gc); err != nil {
		return 0
	}
	return gc.Status.GlobalPolicyVersion
}

func gatewayRefName(ref v1alpha1.GatewayReference) string {
	if ref.Name == "" {
		return v1alpha1.DefaultGatewayConnection
	}
	return ref.Name
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
	r.retries = r.Backoff.perObject()
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
			list := &v1alpha1.SandboxList{}
			opts := []client.ListOption{client.MatchingFields{index: o.GetName()}}
			if namespaced {
				opts = append(opts, client.InNamespace(o.GetNamespace()))
			}
			if err := r.List(ctx, list, opts...); err != nil {
				logf.FromContext(ctx).Error(err, "list dependent sandboxes", "index", index)
				return nil
			}
			reqs := make([]reconcile.Request, 0, len(list.Items))
			for _, s := range list.Items {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
			}
			return reqs
		}
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Sandbox{}).
		Watches(&v1alpha1.Provider{}, handler.EnqueueRequestsFromMapFunc(byIndex(sandboxProviderIndex, true))).
		Watches(&v1alpha1.SandboxPolicy{}, handler.EnqueueRequestsFromMapFunc(byIndex(sandboxPolicyIndex, true))).
		Watches(&v1alpha1.GatewayConnection{}, handler.EnqueueRequestsFromMapFunc(byIndex(sandboxGatewayIndex, false)),
			builder.WithPredicates(connectionReadinessChanged)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, RateLimiter: r.Backoff.rateLimiter()}).
		Named("sandbox")
	if r.ViewEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.ViewEvents, &handler.EnqueueRequestForObject{}))
	}
	return b.Complete(r)
}
