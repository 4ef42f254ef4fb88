package controller

import (
	"context"
	"slices"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// awaited is a transitional sandbox the loop follows until the controller settles it.
type awaited struct {
	id string
	// namespace is the Sandbox's namespace: streams are shared out per namespace.
	namespace string
	// seq is the await order: within a namespace the longest-waiting sandbox streams first.
	seq uint64
}

func (l *observer) await(namespace, name, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, known := l.waiting[name]
	if known && prev.id == id && (l.streams[name] != nil || len(l.streams) >= l.opts.MaxStreams) {
		return
	}
	if !known {
		l.awaitSeq++
		prev.seq = l.awaitSeq
	}
	l.waiting[name] = awaited{id: id, namespace: namespace, seq: prev.seq}
	l.startStreamLocked(name)
	if l.streams[name] == nil {
		// Over the bound: the fallback list follows it until a stream is free.
		l.poke()
	}
}

// platformEvents returns the streamed events of a sandbox id while a stream follows it and
// has delivered its first snapshot (so the tail of earlier events is in).
func (l *observer) platformEvents(id string) ([]*openshellv1.PlatformEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs, ok := l.platform[id]
	if !ok {
		return nil, false
	}
	return slices.Clone(evs), true
}

func (l *observer) settle(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.platform, l.waiting[name].id)
	delete(l.waiting, name)
	if cancel := l.streams[name]; cancel != nil {
		cancel()
		delete(l.streams, name)
	}
	// Hand the freed stream on.
	if next, ok := nextStreamed(l.waiting, l.streams); ok {
		l.startStreamLocked(next)
	}
}

// nextStreamed picks the awaited sandbox without a stream that a freed stream goes to: one
// of the namespace holding the fewest streams, the longest-waiting first. A burst in one
// namespace so cannot hold every stream while another namespace's sandbox waits for the
// fallback list.
func nextStreamed(waiting map[string]awaited, streams map[string]context.CancelFunc) (string, bool) {
	held := map[string]int{}
	for n := range streams {
		held[waiting[n].namespace]++
	}
	best, found := "", false
	for n, w := range waiting {
		if streams[n] != nil || w.id == "" {
			continue
		}
		if b := waiting[best]; !found || held[w.namespace] < held[b.namespace] ||
			(held[w.namespace] == held[b.namespace] && w.seq < b.seq) {
			best, found = n, true
		}
	}
	return best, found
}

func (l *observer) unstreamed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for n := range l.waiting {
		if l.streams[n] == nil {
			return true
		}
	}
	return false
}

func (l *observer) startStreamLocked(name string) {
	id := l.waiting[name].id
	if id == "" || l.streams[name] != nil || len(l.streams) >= l.opts.MaxStreams {
		return
	}
	ctx, cancel := context.WithCancel(l.ctx)
	l.streams[name] = cancel
	go l.follow(ctx, name, id)
}

// follow streams snapshots of one sandbox into the view until cancelled or the stream
// ends (the sandbox is gone, or the stream broke: the fallback list takes over). Platform
// events ride on the same stream, so mirroring them costs no extra call; they are published
// from the first snapshot on, when the gateway has sent the tail of earlier events.
func (l *observer) follow(ctx context.Context, name, id string) {
	log := logf.Log.WithName("observer").WithValues("gatewayConnection", l.name, "sandbox", name)
	defer func() {
		l.mu.Lock()
		if l.streams[name] != nil && ctx.Err() == nil {
			delete(l.streams, name)
		}
		delete(l.platform, id)
		l.mu.Unlock()
		if ctx.Err() == nil {
			l.poke()
		}
	}()
	w, err := l.client.Sandboxes.Watch(ctx, id, gateway.WatchOptions{FollowStatus: true, FollowEvents: true, EventTail: maxStreamedEvents})
	if err != nil {
		log.V(1).Info("cannot follow sandbox; the list takes over", "error", err.Error())
		return
	}
	defer w.Close()
	var events []*openshellv1.PlatformEvent
	published := false
	for {
		ev, err := w.Recv()
		if err != nil {
			if ctx.Err() == nil {
				log.V(1).Info("sandbox stream ended; the list takes over", "error", err.Error())
			}
			return
		}
		if ev.GetDraftPolicyUpdate() != nil {
			l.mu.Lock()
			sb := l.view[name]
			l.mu.Unlock()
			if sb != nil {
				l.emitDraft(sb)
			}
			continue
		}
		if pe := ev.GetEvent(); pe != nil {
			events = append(events, pe)
			events = events[max(0, len(events)-maxStreamedEvents):]
			if published {
				l.mu.Lock()
				l.platform[id] = slices.Clone(events)
				l.mu.Unlock()
			}
			continue
		}
		sb := ev.GetSandbox()
		if sb == nil {
			continue
		}
		l.mu.Lock()
		if ctx.Err() == nil {
			l.platform[id], published = slices.Clone(events), true
			l.seenLocked(name)
		}
		prev := l.view[name]
		newer := prev == nil || laterState(sb, prev)
		if newer {
			l.view[name] = sb
		}
		l.mu.Unlock()
		if newer {
			l.emit(sb)
		}
	}
}
