package gatewaysim

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// Size limits of grpc/mod.rs at the contract commit.
const (
	maxNameLen        = 253
	maxProviders      = 32
	maxLogLevelLen    = 32
	maxEnvEntries     = 128
	maxEnvKeyLen      = 256
	maxEnvValueLen    = 8192
	maxTemplateStr    = 1024
	maxTemplateMap    = 128
	maxStructBytes    = 64 << 10
	maxPolicyBytes    = 256 << 10
	readyReason       = "DependenciesReady"
	readyMessage      = "Supervisor session connected"
	errorReason       = "Unschedulable"
	provisioningRsn   = "Starting"
	provisioningMsg   = "sandbox is starting"
	errorDefaultMsg   = "0/1 nodes are available: insufficient resources"
	deletingMessage   = "sandbox is being deleted"
	platformEventSrc  = "kubernetes"
	platformEventNorm = "Normal"
)

func validateSpec(name string, spec *openshellv1.SandboxSpec) error {
	if len(name) > maxNameLen {
		return status.Errorf(codes.InvalidArgument, "name exceeds %d bytes", maxNameLen)
	}
	if len(spec.GetProviders()) > maxProviders {
		return status.Errorf(codes.InvalidArgument, "providers exceeds %d entries", maxProviders)
	}
	if len(spec.GetLogLevel()) > maxLogLevelLen {
		return status.Errorf(codes.InvalidArgument, "log_level exceeds %d bytes", maxLogLevelLen)
	}
	if err := validateEnv("environment", spec.GetEnvironment()); err != nil {
		return err
	}
	if t := spec.GetTemplate(); t != nil {
		for field, v := range map[string]string{"image": t.GetImage(), "runtime_class_name": t.GetRuntimeClassName(), "agent_socket": t.GetAgentSocket()} {
			if len(v) > maxTemplateStr {
				return status.Errorf(codes.InvalidArgument, "template.%s exceeds %d bytes", field, maxTemplateStr)
			}
		}
		for field, m := range map[string]map[string]string{"labels": t.GetLabels(), "annotations": t.GetAnnotations(), "environment": t.GetEnvironment()} {
			if len(m) > maxTemplateMap {
				return status.Errorf(codes.InvalidArgument, "template.%s exceeds %d entries", field, maxTemplateMap)
			}
		}
		if t.GetResources() != nil && proto.Size(t.GetResources()) > maxStructBytes {
			return status.Errorf(codes.InvalidArgument, "template.resources exceeds %d bytes", maxStructBytes)
		}
		if t.GetVolumeClaimTemplates() != nil && proto.Size(t.GetVolumeClaimTemplates()) > maxStructBytes {
			return status.Errorf(codes.InvalidArgument, "template.volume_claim_templates exceeds %d bytes", maxStructBytes)
		}
	}
	if spec.GetPolicy() != nil && proto.Size(spec.GetPolicy()) > maxPolicyBytes {
		return status.Errorf(codes.InvalidArgument, "policy exceeds %d bytes", maxPolicyBytes)
	}
	return nil
}

func validateEnv(field string, env map[string]string) error {
	if len(env) > maxEnvEntries {
		return status.Errorf(codes.InvalidArgument, "%s exceeds %d entries", field, maxEnvEntries)
	}
	for k, v := range env {
		if len(k) > maxEnvKeyLen {
			return status.Errorf(codes.InvalidArgument, "%s key exceeds %d bytes", field, maxEnvKeyLen)
		}
		if len(v) > maxEnvValueLen {
			return status.Errorf(codes.InvalidArgument, "%s value for %q exceeds %d bytes", field, k, maxEnvValueLen)
		}
	}
	return nil
}

// CreateSandbox follows semantics §1.1 step by step; the first failure wins.
func (s *Simulator) CreateSandbox(_ context.Context, req *openshellv1.CreateSandboxRequest) (*openshellv1.SandboxResponse, error) {
	if req.GetSpec() == nil {
		return nil, status.Error(codes.InvalidArgument, "spec is required")
	}
	if err := validateSpec(req.GetName(), req.GetSpec()); err != nil {
		return nil, err
	}
	if err := validateLabels(req.GetLabels()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	spec := proto.Clone(req.GetSpec()).(*openshellv1.SandboxSpec)
	if err := st.checkProviders(spec.GetProviders()); err != nil {
		return nil, err
	}
	if spec.Template == nil {
		spec.Template = &openshellv1.SandboxTemplate{}
	}
	if spec.Template.Image == "" {
		spec.Template.Image = s.opts.DefaultImage
	}
	if spec.Policy != nil {
		applyIdentityDefaults(spec.Policy)
		if err := validatePolicySafety(spec.Policy); err != nil {
			return nil, err
		}
	}
	name := req.GetName()
	if name == "" {
		name = petname()
		for st.sandboxes[name] != nil {
			name = randomLetters(6)
		}
	}
	if st.sandboxes[name] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "sandbox '%s' already exists", name)
	}
	// The Kubernetes driver's CR create rejects names that are not DNS-1123 subdomains; at the
	// contract commit that surfaces as INTERNAL.
	if !dns1123SubRE.MatchString(name) {
		return nil, status.Errorf(codes.Internal, "create sandbox failed: Sandbox.agents.x-k8s.io %q is invalid: metadata.name: must be a lowercase RFC 1123 subdomain", name)
	}
	labels := map[string]string{}
	for k, v := range req.GetLabels() {
		labels[k] = v
	}
	sb := &openshellv1.Sandbox{
		Metadata: &datamodelv1.ObjectMeta{Id: newID(), Name: name, CreatedAtMs: nowMs(), Labels: labels, ResourceVersion: 1},
		Spec:     spec,
		Status: &openshellv1.SandboxStatus{
			SandboxName: name,
			Phase:       openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING,
			Conditions:  []*openshellv1.SandboxCondition{{Type: "Ready", Status: "False", Reason: provisioningRsn, Message: provisioningMsg, LastTransitionTime: time.Now().UTC().Format(time.RFC3339)}},
		},
	}
	rec := &sandboxRec{sb: sb, seq: st.next()}
	rec.event("Scheduled", fmt.Sprintf("sandbox %s scheduled", name))
	st.sandboxes[name] = rec
	id := sb.Metadata.Id
	st.timers = append(st.timers, time.AfterFunc(s.opts.ProvisioningDelay, func() { s.driverReady(name, id) }))
	return &openshellv1.SandboxResponse{Sandbox: proto.Clone(sb).(*openshellv1.Sandbox)}, nil
}

// event records a platform event and the gateway's INFO log line about it.
func (r *sandboxRec) event(reason, msg string) {
	now := nowMs()
	r.events = append(r.events, &openshellv1.PlatformEvent{TimestampMs: now, Source: platformEventSrc, Type: platformEventNorm, Reason: reason, Message: msg})
	r.logs = append(r.logs, &openshellv1.SandboxLogLine{SandboxId: r.sb.Metadata.Id, TimestampMs: now, Level: "INFO", Target: "openshell_server", Message: reason + ": " + msg, Source: logSourceGateway})
}

// bump is the CAS write every mutation performs: resource_version + 1, even for no-ops.
func (st *state) bump(r *sandboxRec) {
	r.sb.Metadata.ResourceVersion++
	st.notify(r.sb.Metadata.Id)
}

// driverReady is the simulated driver + supervisor: the pod came up and the supervisor connected.
func (s *Simulator) driverReady(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.sandboxes[name]
	if r == nil || r.sb.Metadata.Id != id {
		return
	}
	// The supervisor connects whatever the phase; a pinned phase is kept.
	r.supervisor = true
	if r.forced || !promotable(r) {
		return
	}
	setPhase(r, openshellv1.SandboxPhase_SANDBOX_PHASE_READY)
	r.event("Started", "supervisor session connected")
	s.state.bump(r)
}

// promotable: a connected supervisor promotes PROVISIONING and UNKNOWN to READY (§1.2).
func promotable(r *sandboxRec) bool {
	p := r.sb.Status.Phase
	return p == openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING || p == openshellv1.SandboxPhase_SANDBOX_PHASE_UNKNOWN
}

// setPhase sets phase with the Ready condition the simulated driver reports for it.
func setPhase(r *sandboxRec, phase openshellv1.SandboxPhase) {
	r.sb.Status.Phase = phase
	cond := &openshellv1.SandboxCondition{Type: "Ready", LastTransitionTime: time.Now().UTC().Format(time.RFC3339)}
	switch phase {
	case openshellv1.SandboxPhase_SANDBOX_PHASE_READY:
		cond.Status, cond.Reason, cond.Message = "True", readyReason, readyMessage
	case openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR:
		cond.Status, cond.Reason, cond.Message = "False", errorReason, errorDefaultMsg
	case openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING:
		cond.Status, cond.Reason, cond.Message = "False", "Deleting", deletingMessage
	default:
		cond.Status, cond.Reason, cond.Message = "False", provisioningRsn, provisioningMsg
	}
	r.sb.Status.Conditions = []*openshellv1.SandboxCondition{cond}
}

// ForcePhase pins a sandbox to phase, as a driver event would (ERROR gets a Ready=False
// condition with a non-transient reason). Every phase but READY stays pinned: the simulated
// driver and supervisor leave the sandbox alone until READY is forced (which releases the pin)
// or a driver event arrives (DriverCondition). Forcing READY marks the supervisor connected.
// It reports whether the sandbox exists.
func (s *Simulator) ForcePhase(name string, phase openshellv1.SandboxPhase) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.sandboxes[name]
	if r == nil {
		return false
	}
	r.forced = phase != openshellv1.SandboxPhase_SANDBOX_PHASE_READY
	if phase == openshellv1.SandboxPhase_SANDBOX_PHASE_READY {
		r.supervisor = true // READY means a connected supervisor (§1.2)
	}
	setPhase(r, phase)
	r.event(phase.String(), "phase forced by the simulator")
	s.state.bump(r)
	return true
}

// GetSandbox returns the stored sandbox.
func (s *Simulator) GetSandbox(_ context.Context, req *openshellv1.GetSandboxRequest) (*openshellv1.SandboxResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.sandboxes[req.GetName()]
	if r == nil {
		return nil, status.Error(codes.NotFound, "sandbox not found")
	}
	return &openshellv1.SandboxResponse{Sandbox: proto.Clone(r.sb).(*openshellv1.Sandbox)}, nil
}

// ListSandboxes lists by creation order then name, with the gateway's paging and selectors.
// Labels are matched from creation on (the fixed behaviour of upstream 077adb790, not the
// e98 bug where a fresh sandbox did not match until its first status update).
func (s *Simulator) ListSandboxes(_ context.Context, req *openshellv1.ListSandboxesRequest) (*openshellv1.ListSandboxesResponse, error) {
	sel, err := parseSelector(req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := make([]*sandboxRec, 0, len(s.state.sandboxes))
	for _, r := range s.state.sandboxes {
		if matches(r.sb.Metadata.Labels, sel) {
			recs = append(recs, r)
		}
	}
	sort.Slice(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if a.sb.Metadata.CreatedAtMs != b.sb.Metadata.CreatedAtMs {
			return a.sb.Metadata.CreatedAtMs < b.sb.Metadata.CreatedAtMs
		}
		if a.sb.Metadata.Name != b.sb.Metadata.Name {
			return a.sb.Metadata.Name < b.sb.Metadata.Name
		}
		return a.seq < b.seq
	})
	out := &openshellv1.ListSandboxesResponse{}
	for _, r := range page(recs, req.GetLimit(), req.GetOffset(), 100) {
		out.Sandboxes = append(out.Sandboxes, proto.Clone(r.sb).(*openshellv1.Sandbox))
	}
	return out, nil
}

// DeleteSandbox marks the sandbox DELETING and removes it after the deletion delay.
func (s *Simulator) DeleteSandbox(_ context.Context, req *openshellv1.DeleteSandboxRequest) (*openshellv1.DeleteSandboxResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	r := st.sandboxes[req.GetName()]
	if r == nil {
		return nil, status.Error(codes.NotFound, "sandbox not found")
	}
	r.forced = true
	setPhase(r, openshellv1.SandboxPhase_SANDBOX_PHASE_DELETING)
	r.event("Killing", "deleting sandbox")
	st.bump(r)
	delete(st.settings, r.sb.Metadata.Name)
	for tok, id := range st.sessions {
		if id == r.sb.Metadata.Id {
			delete(st.sessions, tok)
		}
	}
	name, id := r.sb.Metadata.Name, r.sb.Metadata.Id
	st.timers = append(st.timers, time.AfterFunc(s.opts.DeletionDelay, func() { s.driverDeleted(name, id) }))
	return &openshellv1.DeleteSandboxResponse{Deleted: true}, nil
}

func (s *Simulator) driverDeleted(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.sandboxes[name]
	if r == nil || r.sb.Metadata.Id != id {
		return
	}
	delete(s.state.sandboxes, name)
	s.state.notify(id)
}

// envKeyRE is is_valid_env_key: credential keys that do not match are never injected.
var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// activeCredentialKeys are the keys a provider injects as environment variables now: valid
// environment names whose credential has not expired (semantics §3.1, §3.4).
func activeCredentialKeys(p *datamodelv1.Provider, now int64) []string {
	var keys []string
	for k := range p.GetCredentials() {
		if !envKeyRE.MatchString(k) {
			continue
		}
		if exp := p.GetCredentialExpiresAtMs()[k]; exp > 0 && exp <= now {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkProviders requires every named provider to exist and their active credential keys
// not to collide between two different providers.
func (st *state) checkProviders(names []string) error {
	owner := map[string]string{}
	now := nowMs()
	for _, n := range names {
		p := st.providers[n]
		if p == nil {
			return status.Errorf(codes.FailedPrecondition, "provider '%s' not found", n)
		}
		for _, k := range activeCredentialKeys(p.p, now) {
			if other, ok := owner[k]; ok && other != n {
				return status.Errorf(codes.FailedPrecondition, "credential env key '%s' is provided by both provider '%s' and provider '%s'; remove one of them", k, other, n)
			}
			owner[k] = n
		}
	}
	return nil
}

func (st *state) checkExpectedRV(r *sandboxRec, expected uint64, op string) error {
	if expected != 0 && expected != r.sb.Metadata.ResourceVersion {
		return status.Errorf(codes.Aborted, "%s failed due to concurrent modification (current resource_version: %d)", op, r.sb.Metadata.ResourceVersion)
	}
	return nil
}

func validateAttachArgs(sandbox, provider string) error {
	if provider == "" {
		return status.Error(codes.InvalidArgument, "provider_name is required")
	}
	if len(provider) > maxNameLen {
		return status.Errorf(codes.InvalidArgument, "provider_name exceeds %d bytes", maxNameLen)
	}
	if sandbox == "" {
		return status.Error(codes.InvalidArgument, "sandbox_name is required")
	}
	return nil
}

// AttachSandboxProvider appends a provider to a sandbox (semantics §1.7).
func (s *Simulator) AttachSandboxProvider(_ context.Context, req *openshellv1.AttachSandboxProviderRequest) (*openshellv1.AttachSandboxProviderResponse, error) {
	if err := validateAttachArgs(req.GetSandboxName(), req.GetProviderName()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	if st.providers[req.GetProviderName()] == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "provider '%s' not found", req.GetProviderName())
	}
	r := st.sandboxes[req.GetSandboxName()]
	if r == nil {
		return nil, status.Error(codes.NotFound, "sandbox not found")
	}
	list := dedupe(r.sb.Spec.Providers)
	present := contains(list, req.GetProviderName())
	if !present && len(list) >= maxProviders {
		return nil, status.Errorf(codes.InvalidArgument, "sandbox already has %d providers", maxProviders)
	}
	if !present {
		list = append(list, req.GetProviderName())
	}
	if err := st.checkProviders(list); err != nil {
		return nil, err
	}
	if err := st.checkExpectedRV(r, req.GetExpectedResourceVersion(), "attach provider"); err != nil {
		return nil, err
	}
	r.sb.Spec.Providers = list
	st.bump(r)
	return &openshellv1.AttachSandboxProviderResponse{Sandbox: proto.Clone(r.sb).(*openshellv1.Sandbox), Attached: !present}, nil
}

// DetachSandboxProvider removes every occurrence of a provider from a sandbox.
func (s *Simulator) DetachSandboxProvider(_ context.Context, req *openshellv1.DetachSandboxProviderRequest) (*openshellv1.DetachSandboxProviderResponse, error) {
	if err := validateAttachArgs(req.GetSandboxName(), req.GetProviderName()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	r := st.sandboxes[req.GetSandboxName()]
	if r == nil {
		return nil, status.Error(codes.NotFound, "sandbox not found")
	}
	if err := st.checkExpectedRV(r, req.GetExpectedResourceVersion(), "detach provider"); err != nil {
		return nil, err
	}
	var kept []string
	for _, p := range r.sb.Spec.Providers {
		if p != req.GetProviderName() {
			kept = append(kept, p)
		}
	}
	detached := len(kept) != len(r.sb.Spec.Providers)
	r.sb.Spec.Providers = kept
	st.bump(r)
	return &openshellv1.DetachSandboxProviderResponse{Sandbox: proto.Clone(r.sb).(*openshellv1.Sandbox), Detached: detached}, nil
}

// ListSandboxProviders returns the attached providers in spec order, credentials redacted.
func (s *Simulator) ListSandboxProviders(_ context.Context, req *openshellv1.ListSandboxProvidersRequest) (*openshellv1.ListSandboxProvidersResponse, error) {
	if req.GetSandboxName() == "" {
		return nil, status.Error(codes.InvalidArgument, "sandbox_name is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.sandboxes[req.GetSandboxName()]
	if r == nil {
		return nil, status.Error(codes.NotFound, "sandbox not found")
	}
	out := &openshellv1.ListSandboxProvidersResponse{}
	for _, n := range r.sb.Spec.Providers {
		p := s.state.providers[n]
		if p == nil {
			return nil, status.Errorf(codes.FailedPrecondition, "provider '%s' attached to sandbox no longer exists", n)
		}
		out.Providers = append(out.Providers, redacted(p.p))
	}
	return out, nil
}

func dedupe(in []string) []string {
	var out []string
	for _, v := range in {
		if !contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// WatchSandbox streams snapshots (and platform events and log lines when asked) of one
// sandbox by id. A snapshot is sent first and on every change notification; with
// follow_logs the last log_tail_lines lines are replayed and new lines streamed as they are
// written, filtered by log_since_ms. stop_on_terminal closes the stream only on READY, as
// the real gateway does.
func (s *Simulator) WatchSandbox(req *openshellv1.WatchSandboxRequest, stream openshellv1.OpenShell_WatchSandboxServer) error {
	if req.GetId() == "" {
		return status.Error(codes.InvalidArgument, "id is required")
	}
	w, err := s.openWatch(req)
	if err != nil {
		return err
	}
	defer w.close()
	snapshot := true
	for {
		batch, alive := w.collect(snapshot)
		if !alive {
			return nil
		}
		if err := batch.send(stream); err != nil {
			return err
		}
		if req.GetStopOnTerminal() && batch.snap.GetStatus().GetPhase() == openshellv1.SandboxPhase_SANDBOX_PHASE_READY {
			return nil
		}
		select {
		case _, ok := <-w.ch:
			if !ok {
				return status.Error(codes.Unavailable, "gateway restarted")
			}
			snapshot = true
		case _, ok := <-w.logCh:
			if !ok {
				return status.Error(codes.Unavailable, "gateway restarted")
			}
			snapshot = false
		case <-stream.Context().Done():
			return nil
		}
	}
}

// sandboxWatch is one WatchSandbox stream's registration and cursors.
type sandboxWatch struct {
	s          *Simulator
	st         *state
	id         string
	ch, logCh  chan struct{}
	sentEvents int // -1: events are not followed
	logs       *logCursor
	pending    []*openshellv1.SandboxLogLine // replayed tail lines, sent with the first batch
}

func (s *Simulator) openWatch(req *openshellv1.WatchSandboxRequest) (*sandboxWatch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.sandboxByID(req.GetId())
	if r == nil {
		return nil, status.Error(codes.NotFound, "sandbox not found")
	}
	w := &sandboxWatch{s: s, st: s.state, id: req.GetId(), ch: make(chan struct{}, 1), logCh: make(chan struct{}, 1)}
	register(w.st.watchers, w.id, w.ch)
	if !req.GetFollowEvents() {
		w.sentEvents = -1
	}
	if req.GetFollowLogs() {
		register(w.st.logWatchers, w.id, w.logCh)
		w.logs, w.pending = newLogCursor(r, newLogFilter(req.GetLogSinceMs(), nil, ""), req.GetLogTailLines())
	}
	return w, nil
}

func (w *sandboxWatch) close() {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	delete(w.st.watchers[w.id], w.ch)
	delete(w.st.logWatchers[w.id], w.logCh)
}

// watchBatch is what one wake-up of a watch sends: log lines, platform events, then the
// snapshot (nil when only log lines were written).
type watchBatch struct {
	logs   []*openshellv1.SandboxLogLine
	events []*openshellv1.PlatformEvent
	snap   *openshellv1.Sandbox
}

// collect takes what is new since the last batch; alive is false once the sandbox is gone.
func (w *sandboxWatch) collect(snapshot bool) (watchBatch, bool) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	r := w.st.sandboxByID(w.id)
	if r == nil {
		return watchBatch{}, false
	}
	b := watchBatch{logs: w.pending}
	w.pending = nil
	if w.logs != nil {
		b.logs = append(b.logs, w.logs.take(r)...)
	}
	if w.sentEvents >= 0 && w.sentEvents < len(r.events) {
		b.events = append(b.events, r.events[w.sentEvents:]...)
		w.sentEvents = len(r.events)
	}
	if snapshot {
		b.snap = proto.Clone(r.sb).(*openshellv1.Sandbox)
	}
	return b, true
}

func (b watchBatch) send(stream openshellv1.OpenShell_WatchSandboxServer) error {
	for _, l := range b.logs {
		if err := stream.Send(&openshellv1.SandboxStreamEvent{Payload: &openshellv1.SandboxStreamEvent_Log{Log: l}}); err != nil {
			return err
		}
	}
	for _, e := range b.events {
		if err := stream.Send(&openshellv1.SandboxStreamEvent{Payload: &openshellv1.SandboxStreamEvent_Event{Event: e}}); err != nil {
			return err
		}
	}
	if b.snap == nil {
		return nil
	}
	return stream.Send(&openshellv1.SandboxStreamEvent{Payload: &openshellv1.SandboxStreamEvent_Sandbox{Sandbox: b.snap}})
}

func register(all map[string]map[chan struct{}]struct{}, id string, ch chan struct{}) {
	if all[id] == nil {
		all[id] = map[chan struct{}]struct{}{}
	}
	all[id][ch] = struct{}{}
}
