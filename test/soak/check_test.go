//go:build soak

package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/controller"
)

const managedSelector = v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByValue

// snapshot is one round's view: each readable gateway's managed sandboxes, then every Sandbox
// resource (read after the gateways, so a resource present covers what the gateways showed).
type snapshot struct {
	at       time.Time
	readable []bool
	calm     []bool
	gw       [][]*openshellv1.Sandbox
	crs      []v1alpha1.Sandbox
	// providers are each readable gateway's provider names -> ownership uid, and the
	// Provider resources.
	providers [][]providerSeen
	provCRs   []v1alpha1.Provider
}

type providerSeen struct{ name, uid string }

func (h *harness) checkLoop(ctx context.Context) {
	var prev *snapshot
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(checkEvery):
		}
		snap := h.snapshot(ctx)
		if snap == nil {
			continue
		}
		h.checkSafety(snap, prev)
		prev = snap
	}
}

// gatewayCalm: no fault on it now or in the last calmAfterGateway, process up, and no manager
// disturbed in the last calmAfterManager.
func (h *harness) gatewayCalm(gw int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.down[gw] && len(h.active[gw]) == 0 && time.Since(h.disturbed[gw]) > calmAfterGateway &&
		h.mgrFaults == 0 && time.Since(h.mgrDisturb) > calmAfterManager
}

func (h *harness) snapshot(ctx context.Context) *snapshot {
	s := &snapshot{at: time.Now()}
	for gw, sim := range h.sims {
		h.mu.Lock()
		readable := !h.down[gw] && len(h.active[gw]) == 0
		h.mu.Unlock()
		calm := h.gatewayCalm(gw)
		var list []*openshellv1.Sandbox
		if readable {
			c, cancel := callCtx(ctx)
			var err error
			list, err = sim.client.Sandboxes.ListAll(c, managedSelector, 100)
			cancel()
			if err != nil {
				readable, calm = false, false
				if ctx.Err() == nil {
					h.logf("checker: list %s: %v", sim.name, err)
				}
			}
		}
		var provs []providerSeen
		if readable {
			c, cancel := callCtx(ctx)
			all, err := sim.client.Providers.ListAll(c, 100)
			cancel()
			if err != nil {
				readable, calm = false, false
			}
			for _, p := range all {
				provs = append(provs, providerSeen{name: p.GetMetadata().GetName(), uid: p.GetMetadata().GetLabels()[v1alpha1.LabelUID]})
			}
		}
		s.readable = append(s.readable, readable)
		s.calm = append(s.calm, calm && readable)
		s.gw = append(s.gw, list)
		s.providers = append(s.providers, provs)
	}
	var crs v1alpha1.SandboxList
	c, cancel := callCtx(ctx)
	defer cancel()
	if err := h.k8s.List(c, &crs); err != nil {
		return nil
	}
	s.crs = crs.Items
	var ps v1alpha1.ProviderList
	if err := h.k8s.List(c, &ps); err != nil {
		return nil
	}
	s.provCRs = ps.Items
	return s
}

// checkProviderLies: a Provider Ready=True for its generation must have its own gateway
// provider on a calm gateway within lieBound (a state-loss restart empties the gateway; the
// operator must notice).
func (h *harness) checkProviderLies(s, prev *snapshot) {
	for i := range s.provCRs {
		p := &s.provCRs[i]
		gw := slices.Index(Gateways, p.Spec.GatewayRef.Name)
		if gw < 0 || !s.readable[gw] {
			continue
		}
		if !meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady) || p.Status.ObservedGeneration != p.Generation {
			h.clearLie(p.UID)
			continue
		}
		ok := false
		for _, seen := range s.providers[gw] {
			ok = ok || seen.name == p.Status.GatewayName && seen.uid == string(p.UID)
		}
		if ok {
			h.clearLie(p.UID)
			continue
		}
		if !s.calm[gw] || prev == nil || !prev.calm[gw] {
			continue
		}
		h.mu.Lock()
		h.lie[p.UID] += s.at.Sub(prev.at)
		acc := h.lie[p.UID]
		h.lieMax = max(h.lieMax, acc)
		h.mu.Unlock()
		if acc > lieBound {
			h.violate("lie-"+string(p.UID), "Provider %s/%s says Ready=True while %s has no provider %s of its own, for %s of calm gateway",
				p.Namespace, p.Name, Gateways[gw], p.Status.GatewayName, acc.Round(time.Second))
		}
	}
}

// checkSafety checks what must hold at every moment: no duplicate, no leak, no unexplained
// recreation, no lasting lie.
func (h *harness) checkSafety(s, prev *snapshot) {
	h.mu.Lock()
	h.checkRounds++
	h.mu.Unlock()
	live := map[types.UID]*v1alpha1.Sandbox{}
	for i := range s.crs {
		live[s.crs[i].UID] = &s.crs[i]
	}
	for gw, list := range s.gw {
		if !s.readable[gw] {
			continue
		}
		byUID := map[types.UID][]*openshellv1.Sandbox{}
		byName := map[string]*openshellv1.Sandbox{}
		for _, sb := range list {
			uid := types.UID(sb.GetMetadata().GetLabels()[v1alpha1.LabelUID])
			byUID[uid] = append(byUID[uid], sb)
			byName[sb.GetMetadata().GetName()] = sb
		}
		for uid, sbs := range byUID {
			if len(sbs) > 1 {
				h.violate("dup-"+string(uid), "%d gateway sandboxes on %s for one resource (uid %s): %v", len(sbs), Gateways[gw], uid, names(sbs))
			}
			cr := live[uid]
			if cr == nil {
				h.checkGone(gw, uid, sbs[0], s.at)
				continue
			}
			h.checkID(gw, cr, sbs[0], s.at)
		}
		for _, cr := range live {
			if h.gwIndex(cr) == gw {
				h.checkLie(gw, cr, byName, s, prev)
			}
		}
	}
	h.checkProviderLies(s, prev)
	// A Delete-policy resource first seen gone now: from here on its gateway sandbox must be
	// gone or DELETING.
	h.mu.Lock()
	for uid := range h.deleting {
		if live[uid] == nil {
			if _, ok := h.goneSince[uid]; !ok {
				h.goneSince[uid] = time.Now()
			}
		}
	}
	h.mu.Unlock()
}

func names(sbs []*openshellv1.Sandbox) []string {
	var out []string
	for _, sb := range sbs {
		out = append(out, sb.GetMetadata().GetName()+"#"+sb.GetMetadata().GetId())
	}
	return out
}

func (h *harness) gwIndex(cr *v1alpha1.Sandbox) int {
	return slices.Index(Gateways, cr.Spec.GatewayRef.Name)
}

// checkGone: a gateway sandbox whose resource is gone is a leak unless the resource was
// orphaned on purpose or the deletion is still settling on the gateway.
func (h *harness) checkGone(gw int, uid types.UID, sb *openshellv1.Sandbox, listedAt time.Time) {
	h.mu.Lock()
	o, orphaned := h.orphans[uid]
	if orphaned && !o.lost {
		// Seen after its resource was deleted: from now on it must stay.
		o.uncertain, o.id = false, sb.GetMetadata().GetId()
	}
	gone, deleted := h.goneSince[uid]
	h.mu.Unlock()
	if orphaned || !deleted || !gone.Before(listedAt) {
		return
	}
	if sb.GetStatus().GetPhase() == openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING {
		return
	}
	h.violate("leak-"+string(uid), "leak: gateway sandbox %s on %s (phase %s) outlives its Sandbox %s/%s (uid %s, deletionPolicy Delete), gone from the API since %s",
		sb.GetMetadata().GetName(), Gateways[gw], sb.GetStatus().GetPhase(), sb.GetMetadata().GetLabels()[v1alpha1.LabelNamespace],
		sb.GetMetadata().GetLabels()[v1alpha1.LabelName], uid, time.Since(gone).Round(time.Millisecond))
}

// checkID: the gateway sandbox of a live resource keeps its id unless a recreate-needing edit,
// an OnDelete apply or a state-loss restart allowed a new one.
func (h *harness) checkID(gw int, cr *v1alpha1.Sandbox, sb *openshellv1.Sandbox, listedAt time.Time) {
	id := sb.GetMetadata().GetId()
	h.mu.Lock()
	last := h.lastID[cr.UID]
	h.lastID[cr.UID] = id
	if o := h.orphans[cr.UID]; o != nil {
		o.id = id
	}
	changed := last != "" && last != id
	allowed := len(h.allow[cr.UID]) > 0
	if changed && allowed {
		h.allow[cr.UID] = h.allow[cr.UID][1:]
	}
	// Converged on the latest generation: grants made before this list are spent (one
	// recreate may absorb several edits), so they cannot excuse a later recreation.
	if !changed && converged(cr, sb) {
		h.allow[cr.UID] = slices.DeleteFunc(h.allow[cr.UID], func(t time.Time) bool { return t.Before(listedAt) })
	}
	h.mu.Unlock()
	if changed && allowed {
		h.logf("checker: %s/%s on %s has a new gateway sandbox (%s -> %s), as allowed", cr.Namespace, cr.Name, Gateways[gw], last, id)
	}
	if changed && !allowed {
		h.violate("recreated-"+string(cr.UID)+"-"+id, "sandbox %s/%s on %s recreated (id %s -> %s) without a recreate-needing edit, OnDelete apply or state loss",
			cr.Namespace, cr.Name, Gateways[gw], last, id)
	}
}

// converged: the resource is Ready for its generation and the gateway sandbox is the one its
// status names, READY, running its environment.
func converged(cr *v1alpha1.Sandbox, sb *openshellv1.Sandbox) bool {
	return meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady) && cr.Status.ObservedGeneration == cr.Generation &&
		mismatch(cr, sb) == "" && maps.Equal(sb.GetSpec().GetEnvironment(), cr.Spec.Environment)
}

// checkLie: Ready=True for the current generation must match a calm gateway (the sandbox
// exists, is READY, has the status's id and the desired providers) within lieBound.
func (h *harness) checkLie(gw int, cr *v1alpha1.Sandbox, byName map[string]*openshellv1.Sandbox, s, prev *snapshot) {
	ready := meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady)
	if !ready || cr.Status.ObservedGeneration != cr.Generation || cr.DeletionTimestamp != nil {
		h.clearLie(cr.UID)
		return
	}
	why := mismatch(cr, byName[cr.Status.GatewayName])
	if why == "" {
		h.clearLie(cr.UID)
		return
	}
	if !s.calm[gw] || prev == nil || !prev.calm[gw] {
		return // not held against the operator, not forgiven either
	}
	h.mu.Lock()
	h.lie[cr.UID] += s.at.Sub(prev.at)
	acc := h.lie[cr.UID]
	h.lieMax = max(h.lieMax, acc)
	h.mu.Unlock()
	if acc > lieBound {
		h.violate("lie-"+string(cr.UID), "Sandbox %s/%s says Ready=True (generation %d) while %s %s, for %s of calm gateway",
			cr.Namespace, cr.Name, cr.Generation, Gateways[gw], why, acc.Round(time.Second))
	}
}

func (h *harness) clearLie(uid types.UID) {
	h.mu.Lock()
	delete(h.lie, uid)
	h.mu.Unlock()
}

// mismatch says how a gateway sandbox differs from what a Ready resource claims ("" if not).
func mismatch(cr *v1alpha1.Sandbox, sb *openshellv1.Sandbox) string {
	if sb == nil {
		return "has no sandbox " + cr.Status.GatewayName
	}
	if p := sb.GetStatus().GetPhase(); p != openshellv1.SandboxPhase_SANDBOX_PHASE_READY {
		return "reports " + p.String()
	}
	if id := sb.GetMetadata().GetId(); id != cr.Status.SandboxID {
		return fmt.Sprintf("has id %s, not %s", id, cr.Status.SandboxID)
	}
	want := make([]string, 0, len(cr.Spec.Providers))
	for _, p := range cr.Spec.Providers {
		want = append(want, controller.GatewayName(cr.Namespace, p))
	}
	got := slices.Clone(sb.GetSpec().GetProviders())
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		return fmt.Sprintf("has providers %v, not %v", got, want)
	}
	return ""
}

// final waits for convergence after the quiet point, then checks the end state twice, a
// stability window apart, and scans every log line, event and status for credentials.
func (h *harness) final(ctx context.Context) {
	quiet := time.Now()
	var problems []string
	deadline := quiet.Add(convergeTimeout)
	lastReport := quiet
	for {
		problems = h.endState(ctx)
		if len(problems) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		if time.Since(lastReport) > 20*time.Second {
			lastReport = time.Now()
			h.logf("converging: %d left, first: %s", len(problems), problems[0])
		}
		sleep(ctx, 2*time.Second)
	}
	if ctx.Err() != nil {
		h.logf("interrupted while converging: no end-state verdict")
		return
	}
	h.mu.Lock()
	lastFault := h.lastFault
	h.mu.Unlock()
	h.converge = time.Since(quiet)
	h.sinceFault = time.Since(lastFault)
	if len(problems) > 0 {
		for _, p := range problems {
			h.violate("end-"+p, "not converged %s after the last fault: %s", convergeTimeout, p)
		}
	} else {
		h.logf("converged %s after the quiet point, %s after the last fault ended", h.converge.Round(time.Millisecond), h.sinceFault.Round(time.Millisecond))
		ids := h.snapshotIDs()
		sleep(ctx, stabilityWindow)
		if s := h.snapshot(ctx); s != nil {
			h.checkSafety(s, nil)
		}
		for _, p := range h.endState(ctx) {
			h.violate("stable-"+p, "after %s of quiet: %s", stabilityWindow, p)
		}
		after := h.snapshotIDs()
		for uid, id := range ids {
			if after[uid] != id {
				h.violate("stable-id-"+string(uid), "gateway sandbox of uid %s changed from %s to %s while quiet", uid, id, after[uid])
			}
		}
	}
	h.scanCredentials(ctx)
}

func (h *harness) snapshotIDs() map[types.UID]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.lastID)
}

// endState lists what is not converged: every resource Ready for its generation and matching
// the gateway (spec, providers, policy), no finalizer stuck, no leak, no orphan deleted.
func (h *harness) endState(ctx context.Context) []string {
	var problems []string
	s := h.snapshot(ctx)
	if s == nil {
		return []string{"cannot list Sandboxes"}
	}
	for gw := range h.sims {
		if !s.readable[gw] {
			return []string{"cannot list " + Gateways[gw]}
		}
	}
	h.checkSafety(s, nil)
	live := map[types.UID]bool{}
	for i := range s.crs {
		cr := &s.crs[i]
		key := cr.Namespace + "/" + cr.Name
		live[cr.UID] = true
		if cr.DeletionTimestamp != nil {
			problems = append(problems, fmt.Sprintf("Sandbox %s still deleting (finalizers %v)", key, cr.Finalizers))
			continue
		}
		gw := h.gwIndex(cr)
		if !meta.IsStatusConditionTrue(cr.Status.Conditions, v1alpha1.ConditionReady) || cr.Status.ObservedGeneration != cr.Generation {
			c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady)
			problems = append(problems, fmt.Sprintf("Sandbox %s not Ready for generation %d (observed %d): %s", key, cr.Generation, cr.Status.ObservedGeneration, condString(c)))
			continue
		}
		var sb *openshellv1.Sandbox
		for _, g := range s.gw[gw] {
			if g.GetMetadata().GetName() == cr.Status.GatewayName {
				sb = g
			}
		}
		if why := mismatch(cr, sb); why != "" {
			problems = append(problems, fmt.Sprintf("Sandbox %s Ready but %s %s", key, Gateways[gw], why))
			continue
		}
		if !controller.OwnedBy(sb.GetMetadata().GetLabels(), cr) {
			problems = append(problems, fmt.Sprintf("Sandbox %s: gateway sandbox labels %v are not its own", key, sb.GetMetadata().GetLabels()))
		}
		if got := sb.GetSpec().GetEnvironment(); !maps.Equal(got, cr.Spec.Environment) {
			problems = append(problems, fmt.Sprintf("Sandbox %s Ready but the gateway runs environment %v, not %v", key, got, cr.Spec.Environment))
		}
		if want := h.wantHost(ctx, cr); want != "" {
			if got := h.liveHost(ctx, gw, sb.GetMetadata().GetId()); got != want {
				problems = append(problems, fmt.Sprintf("Sandbox %s Ready but its live policy allows %q, not %q", key, got, want))
			}
		}
	}
	h.mu.Lock()
	orphans := maps.Clone(h.orphans)
	h.mu.Unlock()
	for gw, list := range s.gw {
		for _, sb := range list {
			uid := types.UID(sb.GetMetadata().GetLabels()[v1alpha1.LabelUID])
			if _, ok := orphans[uid]; !ok && !live[uid] {
				problems = append(problems, fmt.Sprintf("leak: %s holds %s (phase %s) of a deleted Sandbox", Gateways[gw], sb.GetMetadata().GetName(), sb.GetStatus().GetPhase()))
			}
		}
	}
	for uid, o := range orphans {
		if o.lost || o.uncertain {
			continue
		}
		found := false
		for _, sb := range s.gw[o.gw] {
			found = found || sb.GetMetadata().GetLabels()[v1alpha1.LabelUID] == string(uid)
		}
		if !found {
			problems = append(problems, fmt.Sprintf("orphan %s (uid %s) deleted from %s: deletionPolicy Orphan must leave it", o.name, uid, Gateways[o.gw]))
		}
	}
	problems = append(problems, h.providerState(ctx)...)
	sort.Strings(problems)
	return problems
}

func condString(c *metav1.Condition) string {
	if c == nil {
		return "no Ready condition"
	}
	return fmt.Sprintf("%s/%s %q", c.Status, c.Reason, c.Message)
}

// wantHost is the network host the resource's policy allows now ("" without a policy).
func (h *harness) wantHost(ctx context.Context, cr *v1alpha1.Sandbox) string {
	spec := cr.Spec.Policy
	if cr.Spec.PolicyRef != nil {
		pol := &v1alpha1.SandboxPolicy{}
		c, cancel := callCtx(ctx)
		defer cancel()
		if err := h.k8s.Get(c, types.NamespacedName{Namespace: cr.Namespace, Name: cr.Spec.PolicyRef.Name}, pol); err != nil {
			return "(policy unreadable: " + err.Error() + ")"
		}
		spec = &pol.Spec
	}
	if spec == nil {
		return ""
	}
	return spec.NetworkPolicies["api"].Endpoints[0].Host
}

func (h *harness) liveHost(ctx context.Context, gw int, id string) string {
	c, cancel := callCtx(ctx)
	defer cancel()
	cfg, err := h.sims[gw].client.Policies.SandboxConfig(c, id)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	rule := cfg.GetPolicy().GetNetworkPolicies()["api"]
	if rule == nil || len(rule.GetEndpoints()) == 0 {
		return "(no api rule)"
	}
	return rule.GetEndpoints()[0].GetHost()
}

// providerState: every Provider Ready for its generation with its own gateway provider, and no
// gateway provider without its resource.
func (h *harness) providerState(ctx context.Context) []string {
	var out []string
	var ps v1alpha1.ProviderList
	c, cancel := callCtx(ctx)
	defer cancel()
	if err := h.k8s.List(c, &ps); err != nil {
		return []string{"cannot list Providers: " + err.Error()}
	}
	uids := map[string]bool{}
	for _, p := range ps.Items {
		uids[string(p.UID)] = true
		if !meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady) || p.Status.ObservedGeneration != p.Generation {
			out = append(out, fmt.Sprintf("Provider %s/%s not Ready for generation %d: %s", p.Namespace, p.Name, p.Generation,
				condString(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady))))
		}
	}
	for gw, sim := range h.sims {
		list, err := sim.client.Providers.ListAll(c, 100)
		if err != nil {
			return append(out, fmt.Sprintf("cannot list providers of %s: %v", Gateways[gw], err))
		}
		found := map[string]bool{}
		for _, gp := range list {
			uid := gp.GetMetadata().GetLabels()[v1alpha1.LabelUID]
			found[uid] = true
			if !uids[uid] {
				out = append(out, fmt.Sprintf("gateway provider %s on %s has no Provider", gp.GetMetadata().GetName(), Gateways[gw]))
			}
		}
		for _, p := range ps.Items {
			if p.Spec.GatewayRef.Name == Gateways[gw] && !found[string(p.UID)] {
				out = append(out, fmt.Sprintf("Provider %s/%s has no gateway provider on %s", p.Namespace, p.Name, Gateways[gw]))
			}
		}
	}
	return out
}

// scanCredentials searches every manager log line, every Event and every status for the
// credential values the run wrote and fragments of the client private keys.
func (h *harness) scanCredentials(ctx context.Context) {
	h.mu.Lock()
	secrets := slices.Clone(h.secrets)
	h.mu.Unlock()
	sources := map[string]string{}
	for _, m := range h.mgrs {
		b, err := os.ReadFile(m.p.LogPath())
		if err != nil {
			h.violate("scan-"+m.name, "cannot read %s: %v", m.p.LogPath(), err)
		}
		sources[m.name+" log"] = string(b)
	}
	c, cancel := callCtx(ctx)
	defer cancel()
	var events corev1.EventList
	if err := h.k8s.List(c, &events); err != nil {
		h.violate("scan-events", "cannot list Events: %v", err)
	}
	var ev strings.Builder
	for _, e := range events.Items {
		fmt.Fprintf(&ev, "%s %s\n", e.Reason, e.Message)
	}
	sources["events"] = ev.String()
	for name, list := range map[string]client.ObjectList{"Sandbox": &v1alpha1.SandboxList{}, "Provider": &v1alpha1.ProviderList{},
		"SandboxPolicy": &v1alpha1.SandboxPolicyList{}, "GatewayConnection": &v1alpha1.GatewayConnectionList{}} {
		if err := h.k8s.List(c, list); err != nil {
			h.violate("scan-"+name, "cannot list %s: %v", name, err)
			continue
		}
		items, _ := meta.ExtractList(list)
		var b strings.Builder
		for _, it := range items {
			raw, _ := json.Marshal(it)
			var obj struct {
				Status json.RawMessage `json:"status"`
			}
			_ = json.Unmarshal(raw, &obj)
			b.Write(obj.Status)
			b.WriteByte('\n')
		}
		sources[name+" status"] = b.String()
	}
	for src, text := range sources {
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				h.violate("cred-"+src+secret, "a credential (%d chars, starting %.6q) appears in the %s", len(secret), secret, src)
			}
		}
	}
	h.logf("credential scan: %d values and key fragments in %d sources (%d events)", len(secrets), len(sources), len(events.Items))
}
