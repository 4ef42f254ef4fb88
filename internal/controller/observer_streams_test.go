package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/event"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

func TestNextStreamed(t *testing.T) {
	cancel := context.CancelFunc(func() {})
	cases := []struct {
		name    string
		waiting map[string]awaited
		streams []string
		want    string
	}{
		{"nothing waits", map[string]awaited{}, nil, ""},
		{"every waiting sandbox streams", map[string]awaited{"a": {id: "1", namespace: "x", seq: 1}}, []string{"a"}, ""},
		{"the longest-waiting first within a namespace",
			map[string]awaited{"a": {id: "1", namespace: "x", seq: 3}, "b": {id: "2", namespace: "x", seq: 2}, "c": {id: "3", namespace: "x", seq: 4}}, nil, "b"},
		{"the namespace holding fewer streams first, even when it waited less",
			map[string]awaited{"bulk-1": {id: "1", namespace: "bulk", seq: 1}, "bulk-2": {id: "2", namespace: "bulk", seq: 2},
				"single": {id: "3", namespace: "other", seq: 3}}, []string{"bulk-1"}, "single"},
		{"a namespace with no stream yet goes before one holding one",
			map[string]awaited{"x-1": {id: "1", namespace: "x", seq: 1}, "x-2": {id: "2", namespace: "x", seq: 2},
				"y-1": {id: "3", namespace: "y", seq: 3}, "y-2": {id: "4", namespace: "y", seq: 4}, "z-1": {id: "5", namespace: "z", seq: 5}},
			[]string{"x-1", "y-1"}, "z-1"},
		{"a sandbox without an id cannot stream", map[string]awaited{"a": {namespace: "x", seq: 1}, "b": {id: "2", namespace: "x", seq: 2}}, nil, "b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			streams := map[string]context.CancelFunc{}
			for _, n := range tc.streams {
				streams[n] = cancel
			}
			got, ok := nextStreamed(tc.waiting, streams)
			if ok != (tc.want != "") || got != tc.want {
				t.Fatalf("nextStreamed = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

// TestFreedStreamGoesToTheNamespaceWithoutOne: two streams, both held by a burst's
// namespace; a third burst sandbox waits longer than another namespace's single, but the
// stream the burst frees goes to the single.
func TestFreedStreamGoesToTheNamespaceWithoutOne(t *testing.T) {
	_, cl, ctx := simAndClient(t, gatewaysim.Options{ProvisioningDelay: time.Hour})
	events := make(chan event.GenericEvent, 100)
	l := newObserver("gw", cl, ObserverOptions{Resync: time.Hour, MaxStreams: 2}, events)
	t.Cleanup(l.stop)
	for i, ns := range []string{"bulk", "bulk", "bulk", "other"} {
		name := fmt.Sprintf("%s-%d", ns, i)
		sb, err := cl.Sandboxes.Create(ctx, name, &openshellv1.SandboxSpec{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.await(ns, name, sb.GetMetadata().GetId())
	}
	streamed := func() map[string]bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		out := map[string]bool{}
		for n := range l.streams {
			out[n] = true
		}
		return out
	}
	if got := streamed(); !got["bulk-0"] || !got["bulk-1"] || len(got) != 2 {
		t.Fatalf("streams %v, want bulk-0 and bulk-1", got)
	}
	l.settle("bulk-0")
	if got := streamed(); !got["other-3"] || !got["bulk-1"] || len(got) != 2 {
		t.Fatalf("streams %v after bulk-0 settled, want bulk-1 and other-3 (bulk-2 waited longer, but its namespace holds a stream)", got)
	}
}
