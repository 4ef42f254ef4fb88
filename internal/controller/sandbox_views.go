package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// pollView is the sandboxView of poll mode: it observes nothing, so every reconcile asks
// the gateway (GetSandbox), and no stream follows anything.
type pollView struct{}

func (pollView) Lookup(string, string) (*openshellv1.Sandbox, bool) { return nil, false }
func (pollView) Record(string, *openshellv1.Sandbox)                {}
func (pollView) Await(string, string, string, string)               {}
func (pollView) Settle(string, string)                              {}
func (pollView) Watching() bool                                     { return false }
func (pollView) ProviderMeta(string, string) (*datamodelv1.ObjectMeta, bool) {
	return nil, false
}
func (pollView) PlatformEvents(string, string) ([]*openshellv1.PlatformEvent, bool) {
	return nil, false
}

// recreateLog remembers which gateway sandbox id the operator itself deleted to recreate a
// Sandbox. The next reconcile may read a cached Sandbox whose status does not yet say
// Recreating; without this record it would take the operator's own deletion for an
// out-of-band one and announce a heal. In memory: after a restart the status (Recreating)
// is the only record, which the cache has caught up with by then.
type recreateLog struct {
	mu  sync.Mutex
	ids map[types.UID]string
}

// mark records that id of the Sandbox with uid is being deleted for a recreate.
func (l *recreateLog) mark(uid types.UID, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ids == nil {
		l.ids = map[types.UID]string{}
	}
	l.ids[uid] = id
}

// pending reports whether id is being deleted for a recreate.
func (l *recreateLog) pending(uid types.UID, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	got, ok := l.ids[uid]
	return ok && got == id
}

// take reports whether the sandbox that had id was deleted for a recreate, and forgets it.
func (l *recreateLog) take(uid types.UID, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	got, ok := l.ids[uid]
	if ok {
		delete(l.ids, uid)
	}
	return ok && got == id
}
