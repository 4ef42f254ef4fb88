package controller

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A gateway object is created only for a resource the API server still holds as the cache
// shows it. Leader election does not fence a paused process: a former leader that resumes
// acts on its cache for the seconds until it notices its lease is gone. If the user deleted
// the resource meanwhile and the current leader removed its gateway sandbox, the former
// leader saw a sandbox that had vanished and created it again (soak seed 38). So before a
// create the kind asks confirmCurrent: a write with optimistic concurrency in the same
// reconcile (the kernel's finalizer update) proves the cached version current; otherwise one
// read from the API server (not the cache) compares versions. A reconcile that finds its
// version replaced reports step.Stale: nothing is created or written, and the change's own
// watch event brings the object back.

// staleRequeue is the safety net of a stale reconcile; the change's watch event normally
// comes first.
const staleRequeue = time.Second

type currentKey struct{}

// currentCheck is what a reconcile knows about its object's version.
type currentCheck struct {
	// reader reads from the API server, not the cache.
	reader client.Reader
	// verified is a version an optimistic-concurrency write of this reconcile succeeded on.
	verified string
}

// withCurrentCheck starts a reconcile's version knowledge.
func withCurrentCheck(ctx context.Context, reader client.Reader) context.Context {
	return context.WithValue(ctx, currentKey{}, &currentCheck{reader: reader})
}

// verifiedCurrent records that obj, at its present version, was just written with
// optimistic concurrency.
func verifiedCurrent(ctx context.Context, obj client.Object) {
	if c, ok := ctx.Value(currentKey{}).(*currentCheck); ok {
		c.verified = obj.GetResourceVersion()
	}
}

// confirmCurrent says whether obj's version is the one the API server holds. Outside a
// kernel reconcile it has nothing to compare with and says yes.
func confirmCurrent(ctx context.Context, obj client.Object) (bool, error) {
	c, ok := ctx.Value(currentKey{}).(*currentCheck)
	if !ok || c.reader == nil {
		return true, nil
	}
	if c.verified != "" && c.verified == obj.GetResourceVersion() {
		return true, nil
	}
	live, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return true, nil
	}
	if err := c.reader.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	if live.GetResourceVersion() != obj.GetResourceVersion() {
		return false, nil
	}
	c.verified = live.GetResourceVersion()
	return true, nil
}
