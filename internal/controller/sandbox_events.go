package controller

import (
	"context"
	"sync"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
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

// mirrorPlatformEvents records the gateway's new platform events for a sandbox while it is
// transitional, on the reconcile that sees it turn READY, and once when first seen; never in
// the converged steady state. Events a stream of the observation loop delivered need no call.
func (r *SandboxReconciler) mirrorPlatformEvents(ctx context.Context, reader platformEventReader, obj *v1alpha1.Sandbox, refs sandboxRefs, sb *openshellv1.Sandbox, wasReady bool) {
	id := sb.GetMetadata().GetId()
	if id == "" {
		return
	}
	after, known := r.mirror.seen(id)
	if known && wasReady && sb.GetStatus().GetPhase() == openshellv1.SandboxPhase_SANDBOX_PHASE_READY {
		return
	}
	events, streamed := r.View.PlatformEvents(refs.Connection, id)
	if !streamed {
		var err error
		if events, err = reader.PlatformEvents(ctx, id); err != nil && len(events) == 0 {
			logf.FromContext(ctx).V(1).Info("platform events unavailable", "sandboxID", id, "error", err.Error())
			return
		}
	}
	events, newest := eventsAfter(events, after)
	for _, e := range events {
		reason := e.GetReason()
		if reason == "" {
			reason = eventGatewayPlatform
		}
		record(r.Recorder, obj, eventTypeOfPlatform(e.GetType()), reason, "gateway (%s): %s", e.GetSource(), e.GetMessage())
	}
	r.mirror.mark(id, newest)
}
