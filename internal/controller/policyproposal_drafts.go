package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/metrics"
)

// PolicyDraftReconciler keeps one PolicyProposal per draft chunk of each managed sandbox: it
// creates proposals for new chunks (owned by the Sandbox, so they are garbage-collected with
// it), deletes those whose chunk is gone (cleared on the gateway, or the sandbox deleted),
// carries out the Sandbox's clear request, and pokes the proposals of a sandbox whose draft
// changed. It runs when the observation loop reports a sandbox (every list, and a stream's
// draft update), not on a timer per sandbox: the gateway has no list of drafts across
// sandboxes, so each list costs one GetDraftPolicy per managed sandbox.
type PolicyDraftReconciler struct {
	client.Client
	Gateways gatewayClients
	Recorder eventRecorder
	// Drafts carries the Sandboxes the observation loop reported.
	Drafts <-chan event.GenericEvent
	// Resync is the fallback interval when there is no observation loop (poll mode).
	Resync time.Duration
	// ReadsPerMinute bounds poll mode's GetDraftPolicy calls per gateway as the observation
	// loop bounds its sweep (ObserverOptions.DraftReadsPerMinute): each of a gateway's n
	// sandboxes is read again after Resync or n / ReadsPerMinute minutes, whichever is longer
	// (0: DefaultDraftReadsPerMinute; negative: no bound).
	ReadsPerMinute int
	// Pokes receives the proposals to reconcile again.
	Pokes chan<- event.GenericEvent
	// View is the observation loops' view of the gateway sandboxes, read for the ownership
	// check before GetSandbox (nil: GetSandbox every time).
	View sandboxView

	mu sync.Mutex
	// seen is what each sandbox's last look found, so unchanged drafts poke nothing.
	seen map[types.NamespacedName]draftLook
	// perGateway counts the sandboxes in seen by gateway connection: poll mode's budget.
	perGateway map[string]int
}

// draftLook is the last look at one sandbox's draft: a digest of its chunks and its gateway.
type draftLook struct {
	digest, gateway string
}

// +kubebuilder:rbac:groups=openshell.dev,resources=sandboxes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// proposalName is the PolicyProposal of a sandbox's chunk: the sandbox name and a digest of
// the chunk id (ids are the gateway's and need not be DNS names).
func proposalName(sandbox, chunkID string) string {
	sum := sha256.Sum256([]byte(chunkID))
	return sandbox + "-" + hex.EncodeToString(sum[:])[:10]
}

// draftDigest summarises what of a sandbox's chunks the proposals mirror.
func draftDigest(chunks []*openshellv1.PolicyChunk) string {
	parts := make([]string, 0, len(chunks))
	for _, c := range chunks {
		parts = append(parts, fmt.Sprintf("%s/%s/%d/%d/%s", c.GetId(), c.GetStatus(), c.GetHitCount(), c.GetLastSeenMs(), c.GetRejectionReason()))
	}
	sort.Strings(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:])
}

// Reconcile implements reconcile.Reconciler for a Sandbox key.
func (r *PolicyDraftReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ctx = withTenant(ctx, req.Namespace)
	log := logf.FromContext(ctx)
	sb := &v1alpha1.Sandbox{}
	if err := r.Get(ctx, req.NamespacedName, sb); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		// Garbage collection removes owned proposals; without a collector (envtest) or
		// before it runs, delete them here.
		r.forget(req.NamespacedName)
		return ctrl.Result{}, r.deleteProposals(ctx, req.Namespace, req.Name, nil)
	}
	// status.sandboxID is the tenant's to write: only a hint that the gateway sandbox was
	// created, never what lets a call through (admission below does).
	if !sb.DeletionTimestamp.IsZero() || sb.Status.SandboxID == "" {
		return ctrl.Result{}, nil
	}
	connection := gatewayRefName(sb.Spec.GatewayRef)
	// Not built on the kernel, so the discovery admits the namespace itself, as the kernel
	// does for the Sandbox: a namespace the connection refuses gets no call naming its objects.
	if f := admit(ctx, r.Client, sb, gatewayUse{Connection: connection}); f != nil {
		log.V(1).Info("namespace not admitted; no draft discovery", "reason", f.Reason, "message", f.Message)
		if f.Retry == retryBackoff {
			return ctrl.Result{RequeueAfter: r.resync()}, nil
		}
		return r.later(), nil
	}
	gw, err := r.Gateways.Get(connection)
	if err != nil {
		return ctrl.Result{RequeueAfter: r.resync()}, nil
	}
	name, f := draftSandbox(ctx, r.View, gw, connection, sb)
	switch {
	case f != nil && f.Reason == v1alpha1.ReasonConflict:
		// Another resource's gateway sandbox holds the name: this Sandbox has no chunks, and
		// proposals mirroring that sandbox's would show another tenant's.
		log.Info("the gateway sandbox is not owned by the Sandbox; no draft call", "message", f.Message)
		r.forget(req.NamespacedName)
		if err := r.deleteProposals(ctx, sb.Namespace, sb.Name, nil); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.recordPending(ctx, sb.Namespace); err != nil {
			return ctrl.Result{}, err
		}
		return r.later(), nil
	case f != nil:
		log.V(1).Info("the gateway sandbox is not confirmed; the next observation retries", "message", f.Message)
		return ctrl.Result{RequeueAfter: r.resync()}, nil
	}
	if _, ok := sb.Annotations[v1alpha1.AnnotationClearProposals]; ok {
		if err := r.clear(ctx, gw.Approvals, name, sb); err != nil {
			log.Info("clearing draft chunks failed; retrying", "error", err.Error())
			return ctrl.Result{RequeueAfter: r.resync()}, nil
		}
	}
	draft, err := gw.Approvals.GetDraft(ctx, name, "")
	if err != nil {
		log.V(1).Info("get draft policy failed; the next observation retries", "error", err.Error())
		return ctrl.Result{RequeueAfter: r.resync()}, nil
	}
	chunks := draft.GetChunks()
	digest := draftDigest(chunks)
	keep := map[string]bool{}
	for _, c := range chunks {
		pp := proposalName(sb.Name, c.GetId())
		keep[pp] = true
		if err := r.ensureProposal(ctx, sb, pp, c); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.deleteProposals(ctx, sb.Namespace, sb.Name, keep); err != nil {
		return ctrl.Result{}, err
	}
	if r.changed(req.NamespacedName, draftLook{digest: digest, gateway: connection}) {
		for pp := range keep {
			r.poke(ctx, sb.Namespace, pp)
		}
	}
	if err := r.recordPending(ctx, sb.Namespace); err != nil {
		return ctrl.Result{}, err
	}
	if r.Drafts == nil {
		return ctrl.Result{RequeueAfter: r.pollInterval(connection)}, nil
	}
	return ctrl.Result{}, nil
}

// pollInterval is when poll mode reads a sandbox of gateway connection again: the watch
// mode's sweep rule applied to the sandboxes of that gateway seen so far.
func (r *PolicyDraftReconciler) pollInterval(connection string) time.Duration {
	r.mu.Lock()
	n := r.perGateway[connection]
	r.mu.Unlock()
	return ObserverOptions{DraftResync: r.resync(), DraftReadsPerMinute: r.ReadsPerMinute}.draftSweepInterval(n)
}

// later is the next look at a sandbox the discovery may not read now: in poll mode after the
// resync; in watch mode none (the observation loop reports the sandbox once it is its own).
func (r *PolicyDraftReconciler) later() ctrl.Result {
	if r.Drafts == nil {
		return ctrl.Result{RequeueAfter: r.resync()}
	}
	return ctrl.Result{}
}

func (r *PolicyDraftReconciler) resync() time.Duration {
	if r.Resync > 0 {
		return r.Resync
	}
	return defaultObserveResync
}

// changed records look for key and reports whether its digest differs from the last one.
func (r *PolicyDraftReconciler) changed(key types.NamespacedName, look draftLook) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen, r.perGateway = map[types.NamespacedName]draftLook{}, map[string]int{}
	}
	prev, ok := r.seen[key]
	if ok {
		r.perGateway[prev.gateway]--
	}
	r.seen[key] = look
	r.perGateway[look.gateway]++
	return !ok || prev.digest != look.digest
}

func (r *PolicyDraftReconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.seen[key]; ok {
		r.perGateway[prev.gateway]--
		delete(r.seen, key)
	}
}

func (r *PolicyDraftReconciler) poke(ctx context.Context, namespace, name string) {
	if r.Pokes == nil {
		return
	}
	select {
	case r.Pokes <- event.GenericEvent{Object: &v1alpha1.PolicyProposal{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}}:
	case <-ctx.Done():
	}
}

// ensureProposal creates the proposal of a chunk when missing, owned by the Sandbox.
func (r *PolicyDraftReconciler) ensureProposal(ctx context.Context, sb *v1alpha1.Sandbox, name string, c *openshellv1.PolicyChunk) error {
	err := r.Get(ctx, types.NamespacedName{Namespace: sb.Namespace, Name: name}, &v1alpha1.PolicyProposal{})
	if err == nil || !apierrors.IsNotFound(err) {
		return client.IgnoreNotFound(err)
	}
	p := &v1alpha1.PolicyProposal{
		ObjectMeta: metav1.ObjectMeta{Namespace: sb.Namespace, Name: name,
			Labels: map[string]string{v1alpha1.LabelSandbox: sb.Name, v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
		Spec: v1alpha1.PolicyProposalSpec{SandboxRef: v1alpha1.LocalObjectReference{Name: sb.Name}, ChunkID: c.GetId(),
			Decision: v1alpha1.ProposalPending},
	}
	if err := controllerutil.SetControllerReference(sb, p, r.Scheme()); err != nil {
		return fmt.Errorf("own proposal %s: %w", name, err)
	}
	if err := r.Create(ctx, p); err != nil {
		return client.IgnoreAlreadyExists(err)
	}
	if r.Recorder != nil {
		what := c.GetRuleName()
		if ep := endpointOf(c); ep != "" {
			what += " for " + ep
		}
		if c.GetBinary() != "" {
			what += " by " + c.GetBinary()
		}
		r.Recorder.Eventf(p, corev1.EventTypeNormal, eventProposed, "the policy advisor proposes rule %s", what)
		r.Recorder.Eventf(sb, corev1.EventTypeNormal, eventProposed, "policy proposal %s: rule %s", name, what)
	}
	return nil
}

// endpointOf is the first host:port of a chunk's rule.
func endpointOf(c *openshellv1.PolicyChunk) string {
	eps := c.GetProposedRule().GetEndpoints()
	if len(eps) == 0 {
		return ""
	}
	port := eps[0].GetPort()
	if port == 0 && len(eps[0].GetPorts()) > 0 {
		port = eps[0].GetPorts()[0]
	}
	return fmt.Sprintf("%s:%d", eps[0].GetHost(), port)
}

// deleteProposals deletes the sandbox's proposals not in keep (all with keep nil).
func (r *PolicyDraftReconciler) deleteProposals(ctx context.Context, namespace, sandbox string, keep map[string]bool) error {
	list := &v1alpha1.PolicyProposalList{}
	if err := r.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{v1alpha1.LabelSandbox: sandbox}); err != nil {
		return fmt.Errorf("list proposals of sandbox %s/%s: %w", namespace, sandbox, err)
	}
	for i := range list.Items {
		p := &list.Items[i]
		if keep[p.Name] || p.Spec.SandboxRef.Name != sandbox {
			continue
		}
		if err := r.Delete(ctx, p); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete proposal %s/%s: %w", namespace, p.Name, err)
		}
	}
	return nil
}

// clear carries out the Sandbox's clear request and removes the annotation.
func (r *PolicyDraftReconciler) clear(ctx context.Context, gw approvalsGateway, name string, sb *v1alpha1.Sandbox) error {
	n, err := gw.Clear(ctx, name)
	if err != nil {
		return err
	}
	patch := client.MergeFrom(sb.DeepCopy())
	delete(sb.Annotations, v1alpha1.AnnotationClearProposals)
	if err := r.Patch(ctx, sb, patch); err != nil {
		return fmt.Errorf("remove %s: %w", v1alpha1.AnnotationClearProposals, err)
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(sb, corev1.EventTypeNormal, eventProposalsCleared, "cleared %d pending draft chunks on the gateway", n)
	}
	return nil
}

// recordPending sets the pending-proposals gauge of a namespace.
func (r *PolicyDraftReconciler) recordPending(ctx context.Context, namespace string) error {
	list := &v1alpha1.PolicyProposalList{}
	if err := r.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return fmt.Errorf("list proposals in %s: %w", namespace, err)
	}
	n := 0
	for i := range list.Items {
		p := &list.Items[i]
		if p.Spec.Decision == v1alpha1.ProposalPending && p.Status.GatewayStatus != v1alpha1.ChunkApproved &&
			p.Status.GatewayStatus != v1alpha1.ChunkRejected {
			n++
		}
	}
	metrics.SetPendingProposals(namespace, n)
	return nil
}

// clearRequested passes Sandbox events that add the clear annotation (creations pass too).
var clearRequested = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		_, had := e.ObjectOld.GetAnnotations()[v1alpha1.AnnotationClearProposals]
		_, has := e.ObjectNew.GetAnnotations()[v1alpha1.AnnotationClearProposals]
		// A sandbox that just got its gateway id may already have chunks.
		idSet := e.ObjectOld.(*v1alpha1.Sandbox).Status.SandboxID == "" && e.ObjectNew.(*v1alpha1.Sandbox).Status.SandboxID != ""
		return (has && !had) || idSet
	},
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// SetupWithManager registers the discovery.
func (r *PolicyDraftReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Sandbox{}, builder.WithPredicates(clearRequested)).
		Named("policydraft")
	if r.Drafts != nil {
		b = b.WatchesRawSource(source.Channel(r.Drafts, &handler.EnqueueRequestForObject{}))
	}
	return b.Complete(r)
}
