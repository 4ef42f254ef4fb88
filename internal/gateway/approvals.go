package gateway

import (
	"context"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// ApprovalsAPI manages the draft policy chunks proposed for a sandbox.
type ApprovalsAPI struct{ c *Client }

// GetDraft returns a sandbox's draft chunks; statusFilter "" returns all.
func (a *ApprovalsAPI) GetDraft(ctx context.Context, sandbox, statusFilter string) (*openshellv1.GetDraftPolicyResponse, error) {
	resp, err := a.c.rpc.GetDraftPolicy(ctx, &openshellv1.GetDraftPolicyRequest{Name: sandbox, StatusFilter: statusFilter})
	if err != nil {
		return nil, wrap(err, "get draft policy of sandbox %q", sandbox)
	}
	return resp, nil
}

// GetPending returns the chunks waiting for a decision.
func (a *ApprovalsAPI) GetPending(ctx context.Context, sandbox string) ([]*openshellv1.PolicyChunk, error) {
	resp, err := a.GetDraft(ctx, sandbox, "pending")
	if err != nil {
		return nil, err
	}
	return resp.GetChunks(), nil
}

// Approve merges a chunk's rule into the sandbox policy (a new revision).
func (a *ApprovalsAPI) Approve(ctx context.Context, sandbox, chunkID string) (*openshellv1.ApproveDraftChunkResponse, error) {
	resp, err := a.c.rpc.ApproveDraftChunk(ctx, &openshellv1.ApproveDraftChunkRequest{Name: sandbox, ChunkId: chunkID})
	if err != nil {
		return nil, wrap(err, "approve chunk %q of sandbox %q", chunkID, sandbox)
	}
	return resp, nil
}

// Reject rejects a chunk with a reason.
func (a *ApprovalsAPI) Reject(ctx context.Context, sandbox, chunkID, reason string) error {
	if _, err := a.c.rpc.RejectDraftChunk(ctx, &openshellv1.RejectDraftChunkRequest{Name: sandbox, ChunkId: chunkID, Reason: reason}); err != nil {
		return wrap(err, "reject chunk %q of sandbox %q", chunkID, sandbox)
	}
	return nil
}

// ApproveAll approves every pending chunk (security-flagged ones only when asked).
func (a *ApprovalsAPI) ApproveAll(ctx context.Context, sandbox string, includeSecurityFlagged bool) (*openshellv1.ApproveAllDraftChunksResponse, error) {
	resp, err := a.c.rpc.ApproveAllDraftChunks(ctx, &openshellv1.ApproveAllDraftChunksRequest{Name: sandbox, IncludeSecurityFlagged: includeSecurityFlagged})
	if err != nil {
		return nil, wrap(err, "approve all chunks of sandbox %q", sandbox)
	}
	return resp, nil
}

// Edit replaces the proposed rule of a pending chunk.
func (a *ApprovalsAPI) Edit(ctx context.Context, sandbox, chunkID string, rule *sandboxv1.NetworkPolicyRule) error {
	if _, err := a.c.rpc.EditDraftChunk(ctx, &openshellv1.EditDraftChunkRequest{Name: sandbox, ChunkId: chunkID, ProposedRule: rule}); err != nil {
		return wrap(err, "edit chunk %q of sandbox %q", chunkID, sandbox)
	}
	return nil
}

// Undo returns an approved chunk to pending, removing its rule (a new revision).
func (a *ApprovalsAPI) Undo(ctx context.Context, sandbox, chunkID string) (*openshellv1.UndoDraftChunkResponse, error) {
	resp, err := a.c.rpc.UndoDraftChunk(ctx, &openshellv1.UndoDraftChunkRequest{Name: sandbox, ChunkId: chunkID})
	if err != nil {
		return nil, wrap(err, "undo chunk %q of sandbox %q", chunkID, sandbox)
	}
	return resp, nil
}

// Clear deletes the pending chunks and returns how many there were.
func (a *ApprovalsAPI) Clear(ctx context.Context, sandbox string) (uint32, error) {
	resp, err := a.c.rpc.ClearDraftChunks(ctx, &openshellv1.ClearDraftChunksRequest{Name: sandbox})
	if err != nil {
		return 0, wrap(err, "clear draft chunks of sandbox %q", sandbox)
	}
	return resp.GetChunksCleared(), nil
}

// History lists proposals and decisions in time order.
func (a *ApprovalsAPI) History(ctx context.Context, sandbox string) ([]*openshellv1.DraftHistoryEntry, error) {
	resp, err := a.c.rpc.GetDraftHistory(ctx, &openshellv1.GetDraftHistoryRequest{Name: sandbox})
	if err != nil {
		return nil, wrap(err, "get draft history of sandbox %q", sandbox)
	}
	return resp.GetEntries(), nil
}
