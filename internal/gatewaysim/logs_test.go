package gatewaysim

import (
	"net/http"
	"slices"
	"testing"
	"time"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

func messages(lines []*openshellv1.SandboxLogLine) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.GetMessage())
	}
	return out
}

// TestGetSandboxLogsFilters: since_ms, sources and min_level are honoured (GetSandboxLogsRequest).
func TestGetSandboxLogsFilters(t *testing.T) {
	h := start(t, Options{ProvisioningDelay: time.Hour})
	sb := h.sandbox(t, "a", nil)
	id := sb.GetMetadata().GetId()
	c := tctx(t)
	if !h.sim.AppendLog("a", LogLine{Level: "warn", Message: "careful"}) {
		t.Fatal("append to a live sandbox")
	}
	if code, out := h.post(t, "/sandboxes/a/logs", `{"level":"ERROR","message":"boom"}`); code != http.StatusNoContent {
		t.Fatalf("admin logs: %d %q", code, out)
	}
	if code, _ := h.post(t, "/sandboxes/missing/logs", `{"message":"x"}`); code != http.StatusNotFound {
		t.Fatalf("admin logs for a missing sandbox: %d", code)
	}
	get := func(req *openshellv1.GetSandboxLogsRequest) []string {
		t.Helper()
		req.SandboxId = id
		resp, err := h.rpc.GetSandboxLogs(c, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetBufferTotal() != 3 {
			t.Fatalf("buffer_total %d, want 3", resp.GetBufferTotal())
		}
		return messages(resp.GetLogs())
	}
	all := get(&openshellv1.GetSandboxLogsRequest{})
	if len(all) != 3 || all[1] != "careful" || all[2] != "boom" {
		t.Fatalf("all logs: %v", all)
	}
	for _, tc := range []struct {
		name string
		req  *openshellv1.GetSandboxLogsRequest
		want []string
	}{
		{"min_level ERROR", &openshellv1.GetSandboxLogsRequest{MinLevel: "ERROR"}, []string{"boom"}},
		{"min_level warn", &openshellv1.GetSandboxLogsRequest{MinLevel: "warn"}, []string{"careful", "boom"}},
		{"source sandbox", &openshellv1.GetSandboxLogsRequest{Sources: []string{"sandbox"}}, []string{"careful", "boom"}},
		{"source gateway", &openshellv1.GetSandboxLogsRequest{Sources: []string{"gateway"}}, all[:1]},
		{"unknown source", &openshellv1.GetSandboxLogsRequest{Sources: []string{"nowhere"}}, nil},
		{"since an hour ahead", &openshellv1.GetSandboxLogsRequest{SinceMs: time.Now().Add(time.Hour).UnixMilli()}, nil},
		{"lines 1 of ERROR or WARN", &openshellv1.GetSandboxLogsRequest{Lines: 1, MinLevel: "WARN"}, []string{"boom"}},
	} {
		if got := get(tc.req); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestWatchFollowsLogs: WatchSandbox with follow_logs replays log_tail_lines lines and then
// streams lines as they are written.
func TestWatchFollowsLogs(t *testing.T) {
	h := start(t, Options{ProvisioningDelay: time.Hour})
	sb := h.sandbox(t, "a", nil)
	h.sim.AppendLog("a", LogLine{Message: "old"})
	h.sim.AppendLog("a", LogLine{Message: "recent"})
	c := tctx(t)
	w, err := h.rpc.WatchSandbox(c, &openshellv1.WatchSandboxRequest{Id: sb.GetMetadata().GetId(), FollowStatus: true, FollowLogs: true, LogTailLines: 1})
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	recv := func() *openshellv1.SandboxStreamEvent {
		t.Helper()
		ev, err := w.Recv()
		if err != nil {
			t.Fatalf("recv (logs so far %v): %v", logs, err)
		}
		if l := ev.GetLog(); l != nil {
			logs = append(logs, l.GetMessage())
		}
		return ev
	}
	for recv().GetSandbox() == nil {
	}
	if !slices.Equal(logs, []string{"recent"}) {
		t.Fatalf("replayed %v, want the last line only", logs)
	}
	h.sim.AppendLog("a", LogLine{Level: "ERROR", Message: "live line"})
	for len(logs) < 2 {
		if ev := recv(); ev.GetSandbox() != nil {
			t.Fatalf("a log line is not a sandbox change: got a snapshot")
		}
	}
	if logs[1] != "live line" {
		t.Fatalf("streamed %v", logs)
	}
	// A status change still sends a snapshot, with the gateway's log line about it first.
	if err := h.sim.DriverCondition("a", "False", "Unschedulable", "no nodes"); err != nil {
		t.Fatal(err)
	}
	for recv().GetSandbox() == nil {
	}
	if logs[len(logs)-1] != "Unschedulable: no nodes" {
		t.Fatalf("streamed %v", logs)
	}
}
