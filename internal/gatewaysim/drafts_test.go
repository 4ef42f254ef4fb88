package gatewaysim

import (
	"encoding/json"
	"net/http"
	"testing"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

type chunkReply struct {
	ID         string   `json:"id"`
	Superseded []string `json:"superseded"`
}

func (h *harness) proposeChunk(t *testing.T, sandbox, body string) chunkReply {
	t.Helper()
	code, out := h.post(t, "/sandboxes/"+sandbox+"/draft-chunks", body)
	if code != http.StatusCreated {
		t.Fatalf("POST draft-chunks = %d %q", code, out)
	}
	var r chunkReply
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.ID == "" {
		t.Fatalf("reply %q: %v", out, err)
	}
	return r
}

// TestAdminDraftChunks drives approvals from outside the process: chunks injected over the
// admin API are listed by GetDraftPolicy, a newer chunk for the same host, port and binary
// supersedes the pending one, and a security-flagged chunk is skipped by ApproveAll.
func TestAdminDraftChunks(t *testing.T) {
	h := start(t, Options{})
	h.sandbox(t, "a", nil)
	c := tctx(t)

	first := h.proposeChunk(t, "a", `{"ruleName":"pypi","rule":{"endpoints":[{"host":"pypi.org","port":443}],"binaries":[{"path":"/usr/bin/pip"}]}}`)
	if len(first.Superseded) != 0 {
		t.Fatalf("first chunk superseded %v", first.Superseded)
	}
	// Same host, port and binary: the first chunk is superseded.
	second := h.proposeChunk(t, "a", `{"ruleName":"pypi","rule":{"endpoints":[{"host":"PyPI.org","ports":[443]}],"binaries":[{"path":"/usr/bin/pip"}]},"rationale":"pip install"}`)
	if len(second.Superseded) != 1 || second.Superseded[0] != first.ID {
		t.Fatalf("second chunk superseded %v, want [%s]", second.Superseded, first.ID)
	}
	// Another binary for the same endpoint is a separate proposal.
	other := h.proposeChunk(t, "a", `{"ruleName":"pypi-curl","rule":{"endpoints":[{"host":"pypi.org","port":443}],"binaries":[{"path":"/usr/bin/curl"}]}}`)
	if len(other.Superseded) != 0 {
		t.Fatalf("a chunk for another binary superseded %v", other.Superseded)
	}
	flagged := h.proposeChunk(t, "a", `{"ruleName":"paste","rule":{"endpoints":[{"host":"paste.example","port":443}]},"securityNotes":"exfiltration risk"}`)

	draft, err := h.rpc.GetDraftPolicy(c, &openshellv1.GetDraftPolicyRequest{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*openshellv1.PolicyChunk{}
	for _, ch := range draft.GetChunks() {
		byID[ch.GetId()] = ch
	}
	if got := byID[first.ID]; got.GetStatus() != chunkRejected || got.GetRejectionReason() != "superseded by chunk "+second.ID {
		t.Fatalf("superseded chunk = %q %q", got.GetStatus(), got.GetRejectionReason())
	}
	if got := byID[second.ID]; got.GetStatus() != chunkPending || got.GetBinary() != "/usr/bin/pip" || got.GetRationale() != "pip install" {
		t.Fatalf("new chunk = %v", got)
	}
	if got := byID[flagged.ID]; got.GetSecurityNotes() != "exfiltration risk" {
		t.Fatalf("flagged chunk = %v", got)
	}
	if draft.GetDraftVersion() != 4 || draft.GetLastAnalyzedAtMs() == 0 {
		t.Fatalf("draft_version %d last_analyzed %d, want 4 and set", draft.GetDraftVersion(), draft.GetLastAnalyzedAtMs())
	}

	all, err := h.rpc.ApproveAllDraftChunks(c, &openshellv1.ApproveAllDraftChunksRequest{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if all.GetChunksApproved() != 2 || all.GetChunksSkipped() != 1 {
		t.Fatalf("approve all: approved %d skipped %d, want 2 and 1", all.GetChunksApproved(), all.GetChunksSkipped())
	}
	pending, err := h.rpc.GetDraftPolicy(c, &openshellv1.GetDraftPolicyRequest{Name: "a", StatusFilter: chunkPending})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending.GetChunks()) != 1 || pending.GetChunks()[0].GetId() != flagged.ID {
		t.Fatalf("pending after approve all: %v", pending.GetChunks())
	}
}

func TestAdminDraftChunkRefusals(t *testing.T) {
	h := start(t, Options{})
	h.sandbox(t, "a", nil)
	for _, tc := range []struct {
		name, path, body string
		want             int
	}{
		{"unknown sandbox", "/sandboxes/missing/draft-chunks", `{"ruleName":"x","rule":{"endpoints":[{"host":"x.example","port":443}]}}`, http.StatusNotFound},
		{"no rule", "/sandboxes/a/draft-chunks", `{"ruleName":"x"}`, http.StatusBadRequest},
		{"no rule name", "/sandboxes/a/draft-chunks", `{"rule":{"endpoints":[{"host":"x.example","port":443}]}}`, http.StatusBadRequest},
		{"provider prefix", "/sandboxes/a/draft-chunks", `{"ruleName":"_provider_x","rule":{"endpoints":[{"host":"x.example","port":443}]}}`, http.StatusBadRequest},
		{"bad rule JSON", "/sandboxes/a/draft-chunks", `{"ruleName":"x","rule":{"endpoints":"nope"}}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, out := h.post(t, tc.path, tc.body); code != tc.want {
				t.Fatalf("got %d %q, want %d", code, out, tc.want)
			}
		})
	}
}

// TestRejectApprovedChunkRemovesItsBinary: rejecting (or undoing) an approved chunk takes its
// binary out of the rule; the rule goes with the last binary (remove_chunk_from_policy).
func TestRejectApprovedChunkRemovesItsBinary(t *testing.T) {
	h := start(t, Options{})
	h.sandbox(t, "a", nil)
	c := tctx(t)
	pip := h.proposeChunk(t, "a", `{"ruleName":"pypi","rule":{"endpoints":[{"host":"pypi.org","port":443}],"binaries":[{"path":"/usr/bin/pip"}]}}`)
	curl := h.proposeChunk(t, "a", `{"ruleName":"pypi","rule":{"endpoints":[{"host":"pypi.org","port":443}],"binaries":[{"path":"/usr/bin/curl"}]}}`)
	for _, id := range []string{pip.ID, curl.ID} {
		if _, err := h.rpc.ApproveDraftChunk(c, &openshellv1.ApproveDraftChunkRequest{Name: "a", ChunkId: id}); err != nil {
			t.Fatal(err)
		}
	}
	rule := func() *sandboxv1.NetworkPolicyRule {
		t.Helper()
		st, err := h.rpc.GetSandboxPolicyStatus(c, &openshellv1.GetSandboxPolicyStatusRequest{Name: "a"})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetRevision().GetPolicy().GetNetworkPolicies()["pypi"]
	}
	if got := len(rule().GetBinaries()); got != 2 {
		t.Fatalf("both approvals merged into one rule: %d binaries", got)
	}
	if _, err := h.rpc.RejectDraftChunk(c, &openshellv1.RejectDraftChunkRequest{Name: "a", ChunkId: pip.ID, Reason: "no pip"}); err != nil {
		t.Fatal(err)
	}
	if r := rule(); len(r.GetBinaries()) != 1 || r.GetBinaries()[0].GetPath() != "/usr/bin/curl" {
		t.Fatalf("after rejecting the pip chunk the rule keeps curl only: %v", r)
	}
	if _, err := h.rpc.UndoDraftChunk(c, &openshellv1.UndoDraftChunkRequest{Name: "a", ChunkId: curl.ID}); err != nil {
		t.Fatal(err)
	}
	if r := rule(); r != nil {
		t.Fatalf("undoing the last binary's chunk removes the rule: %v", r)
	}
	draft, err := h.rpc.GetDraftPolicy(c, &openshellv1.GetDraftPolicyRequest{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range draft.GetChunks() {
		if ch.GetId() == pip.ID && (ch.GetStatus() != chunkRejected || ch.GetRejectionReason() != "no pip") {
			t.Fatalf("rejected chunk %v", ch)
		}
		if ch.GetId() == curl.ID && ch.GetStatus() != chunkPending {
			t.Fatalf("undone chunk %v", ch)
		}
	}
}
