package gatewaysim

import (
	"context"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// Draft chunk statuses as stored by the gateway.
const (
	chunkPending  = "pending"
	chunkApproved = "approved"
	chunkRejected = "rejected"
)

// DraftChunk is a rule proposed for a sandbox's draft policy, as the in-sandbox policy
// advisor submits it through SubmitPolicyAnalysis.
type DraftChunk struct {
	// RuleName is the proposed network_policies key; required, and not "_provider_*".
	RuleName string
	// Rule is the proposed rule; required.
	Rule *sandboxv1.NetworkPolicyRule
	// Rationale explains the proposal; a default is used when empty.
	Rationale string
	// SecurityNotes flags the chunk: ApproveAll skips it unless include_security_flagged.
	SecurityNotes string
	// Binary is the binary that triggered the denial; it defaults to the rule's first binary.
	Binary string
}

// AddDraftChunk adds a pending proposed rule to a sandbox's draft policy and returns its
// chunk id. securityNotes flags it for ApproveAll. See ProposeDraftChunk.
func (s *Simulator) AddDraftChunk(sandbox, ruleName string, rule *sandboxv1.NetworkPolicyRule, securityNotes string) (string, error) {
	id, _, err := s.ProposeDraftChunk(sandbox, DraftChunk{RuleName: ruleName, Rule: rule, SecurityNotes: securityNotes})
	return id, err
}

// ProposeDraftChunk adds a pending chunk to a sandbox's draft policy, as an accepted chunk
// of SubmitPolicyAnalysis: a pending chunk of the same sandbox for the same (host, port,
// binary) is rejected with reason "superseded by chunk <id>" (semantics §5). It returns the
// new chunk's id and the ids it superseded. A missing sandbox is NOT_FOUND; a chunk without
// rule name or rule, or named "_provider_*", is INVALID_ARGUMENT.
func (s *Simulator) ProposeDraftChunk(sandbox string, in DraftChunk) (string, []string, error) {
	if strings.TrimSpace(in.RuleName) == "" || in.Rule == nil {
		return "", nil, status.Error(codes.InvalidArgument, "chunk requires rule_name and proposed_rule")
	}
	if strings.HasPrefix(in.RuleName, providerRulePrefix) {
		return "", nil, status.Errorf(codes.InvalidArgument, "rule_name %q uses the reserved prefix %q", in.RuleName, providerRulePrefix)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	r := st.sandboxes[sandbox]
	if r == nil {
		return "", nil, status.Error(codes.NotFound, "sandbox not found")
	}
	rule := proto.Clone(in.Rule).(*sandboxv1.NetworkPolicyRule)
	binary := in.Binary
	if binary == "" && len(rule.GetBinaries()) > 0 {
		binary = rule.GetBinaries()[0].GetPath()
	}
	rationale := in.Rationale
	if rationale == "" {
		rationale = "observed denied connection"
	}
	now := nowMs()
	id := newID()
	host, port := chunkTarget(rule)
	var superseded []string
	for _, oid := range st.draftOrder {
		old := st.drafts[oid]
		if old == nil || old.sandbox != sandbox || old.chunk.Status != chunkPending {
			continue
		}
		if oh, op := chunkTarget(old.chunk.ProposedRule); strings.EqualFold(oh, host) && op == port && old.chunk.Binary == binary {
			old.chunk.Status = chunkRejected
			old.chunk.RejectionReason = "superseded by chunk " + id
			old.chunk.DecidedAtMs = now
			st.record(sandbox, chunkRejected, oid, old.chunk.RejectionReason)
			superseded = append(superseded, oid)
		}
	}
	st.drafts[id] = &draftChunk{sandbox: sandbox, chunk: &openshellv1.PolicyChunk{
		Id: id, Status: chunkPending, RuleName: in.RuleName, ProposedRule: rule, Rationale: rationale,
		SecurityNotes: in.SecurityNotes, Confidence: 0.9, CreatedAtMs: now, Binary: binary,
		HitCount: 1, FirstSeenMs: now, LastSeenMs: now, Stage: "initial",
	}}
	st.draftOrder = append(st.draftOrder, id)
	st.draftVersion[sandbox]++
	st.record(sandbox, "proposed", id, "proposed rule "+in.RuleName)
	st.notify(r.sb.Metadata.Id)
	return id, superseded, nil
}

// providerRulePrefix marks the rules the gateway composes from providers; proposals may not use it.
const providerRulePrefix = "_provider_"

// chunkTarget is the (host, port) a proposed rule is about: its first endpoint.
func chunkTarget(rule *sandboxv1.NetworkPolicyRule) (string, uint32) {
	eps := rule.GetEndpoints()
	if len(eps) == 0 {
		return "", 0
	}
	port := eps[0].GetPort()
	if port == 0 && len(eps[0].GetPorts()) > 0 {
		port = eps[0].GetPorts()[0]
	}
	return strings.ToLower(eps[0].GetHost()), port
}

func (st *state) draftSandbox(name string) (*sandboxRec, error) {
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	r := st.sandboxes[name]
	if r == nil {
		return nil, status.Error(codes.NotFound, "sandbox not found")
	}
	return r, nil
}

func (st *state) chunk(sandbox, id string) (*draftChunk, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "chunk_id is required")
	}
	c := st.drafts[id]
	if c == nil || c.sandbox != sandbox {
		return nil, status.Error(codes.NotFound, "chunk not found")
	}
	return c, nil
}

func wrongStatus(c *draftChunk, expected string) error {
	return status.Errorf(codes.FailedPrecondition, "chunk status is '%s', expected %s", c.chunk.Status, expected)
}

func (st *state) record(sandbox, event, chunkID, desc string) {
	st.history[sandbox] = append(st.history[sandbox], &openshellv1.DraftHistoryEntry{TimestampMs: nowMs(), EventType: event, Description: desc, ChunkId: chunkID})
}

// GetDraftPolicy lists a sandbox's draft chunks, optionally filtered by status.
func (s *Simulator) GetDraftPolicy(_ context.Context, req *openshellv1.GetDraftPolicyRequest) (*openshellv1.GetDraftPolicyResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.state.draftSandbox(req.GetName()); err != nil {
		return nil, err
	}
	out := &openshellv1.GetDraftPolicyResponse{}
	for _, id := range s.state.draftOrder {
		c := s.state.drafts[id]
		if c == nil || c.sandbox != req.GetName() {
			continue
		}
		if req.GetStatusFilter() != "" && c.chunk.Status != req.GetStatusFilter() {
			continue
		}
		out.Chunks = append(out.Chunks, proto.Clone(c.chunk).(*openshellv1.PolicyChunk))
	}
	out.DraftVersion = s.state.draftVersion[req.GetName()]
	for _, c := range out.Chunks {
		out.LastAnalyzedAtMs = max(out.LastAnalyzedAtMs, c.GetCreatedAtMs())
	}
	return out, nil
}

// approve merges a chunk's rule into the sandbox policy as a new pending revision.
func (st *state) approve(r *sandboxRec, c *draftChunk) (*openshellv1.UpdateConfigResponse, error) {
	resp, err := st.mergePolicy(r, []*openshellv1.PolicyMergeOperation{{Operation: &openshellv1.PolicyMergeOperation_AddRule{
		AddRule: &openshellv1.AddNetworkRule{RuleName: c.chunk.RuleName, Rule: c.chunk.ProposedRule},
	}}})
	if err != nil {
		return nil, err
	}
	c.chunk.Status = chunkApproved
	c.chunk.DecidedAtMs = nowMs()
	st.record(r.sb.Metadata.Name, chunkApproved, c.chunk.Id, "approved rule "+c.chunk.RuleName)
	return resp, nil
}

// unmergeChunk takes an approved chunk back out of the policy as remove_chunk_from_policy
// does: the chunk's binary leaves its rule, and the rule goes when no binary is left, in a
// new revision. A rule that is gone already (or a chunk without a binary whose rule still
// has binaries) changes nothing and answers the latest revision.
func (st *state) unmergeChunk(r *sandboxRec, c *draftChunk) (*openshellv1.UpdateConfigResponse, error) {
	latest := st.latest(r.sb.Metadata.Id)
	var rule *sandboxv1.NetworkPolicyRule
	if latest != nil {
		rule = latest.policy.GetNetworkPolicies()[c.chunk.RuleName]
	}
	remaining := 0
	for _, b := range rule.GetBinaries() {
		if b.GetPath() != c.chunk.Binary {
			remaining++
		}
	}
	var op *openshellv1.PolicyMergeOperation
	switch {
	case rule == nil || (remaining == len(rule.GetBinaries()) && remaining > 0):
		if latest == nil {
			return &openshellv1.UpdateConfigResponse{}, nil
		}
		return &openshellv1.UpdateConfigResponse{Version: latest.version, PolicyHash: latest.hash}, nil
	case remaining == 0:
		op = &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveRule{RemoveRule: &openshellv1.RemoveNetworkRule{RuleName: c.chunk.RuleName}}}
	default:
		op = &openshellv1.PolicyMergeOperation{Operation: &openshellv1.PolicyMergeOperation_RemoveBinary{RemoveBinary: &openshellv1.RemoveNetworkBinary{RuleName: c.chunk.RuleName, BinaryPath: c.chunk.Binary}}}
	}
	return st.mergePolicy(r, []*openshellv1.PolicyMergeOperation{op})
}

// ApproveDraftChunk approves a pending (or rejected) chunk.
func (s *Simulator) ApproveDraftChunk(_ context.Context, req *openshellv1.ApproveDraftChunkRequest) (*openshellv1.ApproveDraftChunkResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	r, err := st.draftSandbox(req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := st.chunk(req.GetName(), req.GetChunkId())
	if err != nil {
		return nil, err
	}
	if c.chunk.Status != chunkPending && c.chunk.Status != chunkRejected {
		return nil, wrongStatus(c, "'pending' or 'rejected'")
	}
	resp, err := st.approve(r, c)
	if err != nil {
		return nil, err
	}
	return &openshellv1.ApproveDraftChunkResponse{PolicyVersion: resp.Version, PolicyHash: resp.PolicyHash}, nil
}

// RejectDraftChunk rejects a pending or approved chunk (approved: its rule binary is removed).
func (s *Simulator) RejectDraftChunk(_ context.Context, req *openshellv1.RejectDraftChunkRequest) (*openshellv1.RejectDraftChunkResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	r, err := st.draftSandbox(req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := st.chunk(req.GetName(), req.GetChunkId())
	if err != nil {
		return nil, err
	}
	switch c.chunk.Status {
	case chunkPending:
	case chunkApproved:
		if st.globalPolicyActive() {
			return nil, status.Error(codes.FailedPrecondition, "policy is managed globally; delete global policy before sandbox policy update")
		}
		if _, err := st.unmergeChunk(r, c); err != nil {
			return nil, err
		}
	default:
		return nil, wrongStatus(c, "'pending' or 'approved'")
	}
	c.chunk.Status = chunkRejected
	c.chunk.RejectionReason = req.GetReason()
	c.chunk.DecidedAtMs = nowMs()
	st.record(req.GetName(), chunkRejected, c.chunk.Id, "rejected: "+req.GetReason())
	return &openshellv1.RejectDraftChunkResponse{}, nil
}

// ApproveAllDraftChunks approves every pending chunk, skipping security-flagged ones unless asked.
func (s *Simulator) ApproveAllDraftChunks(_ context.Context, req *openshellv1.ApproveAllDraftChunksRequest) (*openshellv1.ApproveAllDraftChunksResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	r, err := st.draftSandbox(req.GetName())
	if err != nil {
		return nil, err
	}
	var pending []*draftChunk
	for _, id := range st.draftOrder {
		if c := st.drafts[id]; c != nil && c.sandbox == req.GetName() && c.chunk.Status == chunkPending {
			pending = append(pending, c)
		}
	}
	if len(pending) == 0 {
		return nil, status.Error(codes.FailedPrecondition, "no pending chunks to approve")
	}
	if st.globalPolicyActive() {
		return nil, status.Error(codes.FailedPrecondition, "policy is managed globally; delete global policy before sandbox policy update")
	}
	out := &openshellv1.ApproveAllDraftChunksResponse{}
	for _, c := range pending {
		if c.chunk.SecurityNotes != "" && !req.GetIncludeSecurityFlagged() {
			out.ChunksSkipped++
			continue
		}
		resp, err := st.approve(r, c)
		if err != nil {
			return nil, err
		}
		out.PolicyVersion, out.PolicyHash = resp.Version, resp.PolicyHash
		out.ChunksApproved++
	}
	return out, nil
}

// EditDraftChunk replaces the proposed rule of a pending chunk.
func (s *Simulator) EditDraftChunk(_ context.Context, req *openshellv1.EditDraftChunkRequest) (*openshellv1.EditDraftChunkResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	if _, err := st.draftSandbox(req.GetName()); err != nil {
		return nil, err
	}
	c, err := st.chunk(req.GetName(), req.GetChunkId())
	if err != nil {
		return nil, err
	}
	if c.chunk.Status != chunkPending {
		return nil, wrongStatus(c, "'pending'")
	}
	if req.GetProposedRule() == nil {
		return nil, status.Error(codes.InvalidArgument, "proposed_rule is required")
	}
	c.chunk.ProposedRule = proto.Clone(req.GetProposedRule()).(*sandboxv1.NetworkPolicyRule)
	st.record(req.GetName(), "edited", c.chunk.Id, "edited rule "+c.chunk.RuleName)
	return &openshellv1.EditDraftChunkResponse{}, nil
}

// UndoDraftChunk returns an approved chunk to pending and removes its rule (a new revision).
func (s *Simulator) UndoDraftChunk(_ context.Context, req *openshellv1.UndoDraftChunkRequest) (*openshellv1.UndoDraftChunkResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	r, err := st.draftSandbox(req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := st.chunk(req.GetName(), req.GetChunkId())
	if err != nil {
		return nil, err
	}
	if c.chunk.Status != chunkApproved {
		return nil, wrongStatus(c, "'approved'")
	}
	resp, err := st.unmergeChunk(r, c)
	if err != nil {
		return nil, err
	}
	c.chunk.Status = chunkPending
	c.chunk.DecidedAtMs = 0
	st.record(req.GetName(), "undone", c.chunk.Id, "undid approval of "+c.chunk.RuleName)
	return &openshellv1.UndoDraftChunkResponse{PolicyVersion: resp.Version, PolicyHash: resp.PolicyHash}, nil
}

// ClearDraftChunks deletes the pending chunks of a sandbox.
func (s *Simulator) ClearDraftChunks(_ context.Context, req *openshellv1.ClearDraftChunksRequest) (*openshellv1.ClearDraftChunksResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	if _, err := st.draftSandbox(req.GetName()); err != nil {
		return nil, err
	}
	var n uint32
	for id, c := range st.drafts {
		if c.sandbox == req.GetName() && c.chunk.Status == chunkPending {
			delete(st.drafts, id)
			n++
		}
	}
	return &openshellv1.ClearDraftChunksResponse{ChunksCleared: n}, nil
}

// GetDraftHistory lists proposals and decisions in time order.
func (s *Simulator) GetDraftHistory(_ context.Context, req *openshellv1.GetDraftHistoryRequest) (*openshellv1.GetDraftHistoryResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.state.draftSandbox(req.GetName()); err != nil {
		return nil, err
	}
	entries := make([]*openshellv1.DraftHistoryEntry, 0, len(s.state.history[req.GetName()]))
	for _, e := range s.state.history[req.GetName()] {
		entries = append(entries, proto.Clone(e).(*openshellv1.DraftHistoryEntry))
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].TimestampMs < entries[j].TimestampMs })
	return &openshellv1.GetDraftHistoryResponse{Entries: entries}, nil
}
