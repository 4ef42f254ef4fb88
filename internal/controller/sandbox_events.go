package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// sandboxEventMirror remembers, per gateway sandbox id, the newest platform event already
// mirrored as a Kubernetes Event. It is in memory: after a restart recent events may repeat
// once (the recorder aggregates identical events).
type sandboxEventMirror struct {
	mu   sync.Mutex
	last map[string]int64
}

func (m *sandboxEventMirror) seen(id string) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.last[id]
	return v, ok
}

func (m *sandboxEventMirror) mark(id string, ts int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		m.last = map[string]int64{}
	}
	if ts > m.last[id] || m.last[id] == 0 {
		m.last[id] = ts
	}
}

// readPlatformEvents reads the gateway's platform events of a sandbox with a short-lived
// WatchSandbox: the gateway sends the events so far, then a snapshot, where we stop.
func readPlatformEvents(ctx context.Context, gw *gateway.Client, id string) ([]*openshellv1.PlatformEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	w, err := gw.Sandboxes.Watch(ctx, id, gateway.WatchOptions{FollowEvents: true, EventTail: maxStreamedEvents})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	var out []*openshellv1.PlatformEvent
	for {
		ev, err := w.Recv()
		if err != nil {
			return out, err
		}
		if e := ev.GetEvent(); e != nil {
			out = append(out, e)
		}
		if ev.GetSandbox() != nil {
			return out, nil
		}
	}
}

// eventsAfter keeps the events newer than after and returns the newest timestamp seen.
func eventsAfter(events []*openshellv1.PlatformEvent, after int64) ([]*openshellv1.PlatformEvent, int64) {
	var out []*openshellv1.PlatformEvent
	newest := after
	for _, e := range events {
		if e.GetTimestampMs() > after {
			out = append(out, e)
			newest = max(newest, e.GetTimestampMs())
		}
	}
	return out, newest
}

// streamedPlatformEvents returns the events the observation stream of a followed sandbox
// delivered, so mirroring needs no call of its own.
func (r *SandboxReconciler) streamedPlatformEvents(obj runtime.Object, id string) ([]*openshellv1.PlatformEvent, bool) {
	owner, ok := obj.(*v1alpha1.Sandbox)
	if r.View == nil || !ok {
		return nil, false
	}
	return r.View.PlatformEvents(gatewayRefName(owner.Spec.GatewayRef), id)
}

// mirrorPlatformEvents records the gateway's new platform events for a sandbox while it is
// transitional, on the reconcile that sees it turn READY, and once when first seen; never in
// the converged steady state.
func (r *SandboxReconciler) mirrorPlatformEvents(ctx context.Context, gw *gateway.Client, obj runtime.Object, sb *openshellv1.Sandbox, wasReady bool) {
	id := sb.GetMetadata().GetId()
	if id == "" {
		return
	}
	after, known := r.mirror.seen(id)
	if known && wasReady && sb.GetStatus().GetPhase() == openshellv1.SandboxPhase_SANDBOX_PHASE_READY {
		return
	}
	events, streamed := r.streamedPlatformEvents(obj, id)
	if !streamed {
		var err error
		if events, err = readPlatformEvents(ctx, gw, id); err != nil && len(events) == 0 {
			logf.FromContext(ctx).V(1).Info("platform events unavailable", "sandboxID", id, "error", err.Error())
			return
		}
	}
	events, newest := eventsAfter(events, after)
	for _, e := range events {
		eventType := "Normal"
		if e.GetType() == "Warning" {
			eventType = "Warning"
		}
		reason := e.GetReason()
		if reason == "" {
			reason = "GatewayEvent"
		}
		r.eventf(obj, eventType, reason, "gateway (%s): %s", e.GetSource(), e.GetMessage())
	}
	r.mirror.mark(id, newest)
}
