package controller

import (
	"sort"
	"time"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// listKey is a sandbox's place in the gateway's list order: creation time, then name
// (gateway-semantics 1.3).
type listKey struct {
	createdAtMs int64
	name        string
}

func listKeyOf(sb *openshellv1.Sandbox) listKey {
	return listKey{createdAtMs: sb.GetMetadata().GetCreatedAtMs(), name: sb.GetMetadata().GetName()}
}

func (k listKey) less(o listKey) bool {
	if k.createdAtMs != o.createdAtMs {
		return k.createdAtMs < o.createdAtMs
	}
	return k.name < o.name
}

func keysOf(sbs []*openshellv1.Sandbox) []listKey {
	keys := make([]listKey, len(sbs))
	for i, sb := range sbs {
		keys[i] = listKeyOf(sb)
	}
	return keys
}

// listTail is the fallback list: it reads the gateway's order from the oldest awaited
// sandbox without a stream to the end, and merges that range into the view. The gateway
// lists oldest first and a creation burst's transitional sandboxes are its newest, so this
// reads a few pages where a full list reads N / page size. It lists everything instead
// (full = true) when it cannot place that sandbox (not in the view, or within the first half
// page) or when the order moved under it (deletions before it shifted the offset past it).
func (l *observer) listTail(at time.Time) (full bool, err error) {
	l.mu.Lock()
	oldest, offset, ok := l.tailStartLocked()
	since := l.seenSeq
	l.mu.Unlock()
	if !ok {
		return true, l.list(at)
	}
	tail, err := l.client.Sandboxes.ListFrom(l.ctx, managedSelector, l.opts.PageSize, offset)
	if err != nil {
		l.mu.Lock()
		l.synced = false
		l.mu.Unlock()
		return false, err
	}
	if len(tail) == 0 || oldest.less(listKeyOf(tail[0])) {
		return true, l.list(at)
	}
	for _, sb := range l.mergeTail(tail, since) {
		l.emit(sb)
	}
	return false, nil
}

// tailStartLocked returns the list key of the oldest awaited sandbox without a stream and
// the offset to list from: its position at the last list, less half a page so that a few
// deletions before it since do not skip it. ok is false when a full list is needed.
func (l *observer) tailStartLocked() (oldest listKey, offset uint32, ok bool) {
	found := false
	for name := range l.waiting {
		if l.streams[name] != nil {
			continue
		}
		sb := l.view[name]
		if sb == nil {
			return listKey{}, 0, false
		}
		if k := listKeyOf(sb); !found || k.less(oldest) {
			oldest, found = k, true
		}
	}
	if !found {
		return listKey{}, 0, false
	}
	pos := sort.Search(len(l.order), func(i int) bool { return !l.order[i].less(oldest) })
	margin := int(l.opts.PageSize / 2)
	if pos <= margin {
		return listKey{}, 0, false
	}
	return oldest, uint32(pos - margin), true
}

// mergeTail merges a tail list (the gateway's order from tail[0] on) into the view and
// returns what changed, as a full list's diff would, with the same rule for what a write or
// a stream showed while it ran (outranksListLocked). A sandbox of the view within the tail's
// range but not in it is gone, unless seen after the list started; one after the tail's last
// is left alone (not listed yet).
func (l *observer) mergeTail(tail []*openshellv1.Sandbox, since uint64) []*openshellv1.Sandbox {
	first, last := listKeyOf(tail[0]), listKeyOf(tail[len(tail)-1])
	listed := make(map[string]bool, len(tail))
	l.mu.Lock()
	defer l.mu.Unlock()
	var changed []*openshellv1.Sandbox
	for _, sb := range tail {
		name := sb.GetMetadata().GetName()
		listed[name] = true
		prev := l.view[name]
		if prev != nil && (prev.GetMetadata().GetResourceVersion() == sb.GetMetadata().GetResourceVersion() ||
			l.outranksListLocked(name, prev, sb, since)) {
			continue
		}
		l.view[name] = sb
		changed = append(changed, sb)
	}
	for name, sb := range l.view {
		if k := listKeyOf(sb); listed[name] || k.less(first) || last.less(k) || l.outranksListLocked(name, sb, nil, since) {
			continue
		}
		delete(l.view, name)
		changed = append(changed, sb)
		if l.streams[name] == nil {
			delete(l.waiting, name)
		}
	}
	at := sort.Search(len(l.order), func(i int) bool { return !l.order[i].less(first) })
	l.order = append(l.order[:at:at], keysOf(tail)...)
	return changed
}
