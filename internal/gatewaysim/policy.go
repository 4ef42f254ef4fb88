package gatewaysim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

const (
	sandboxIdentity = "sandbox"
	maxPolicyPaths  = 256
	maxPathLen      = 4096
	// policySettingKey is the reserved global setting that holds the global policy.
	policySettingKey = "policy"
)

// tldWildcardRE matches wildcard hosts that cover a whole top-level domain, like "*.com".
var tldWildcardRE = regexp.MustCompile(`^\*\.[^.]+\.?$`)

func applyIdentityDefaults(p *sandboxv1.SandboxPolicy) {
	if p.Process == nil {
		p.Process = &sandboxv1.ProcessPolicy{}
	}
	if p.Process.RunAsUser == "" {
		p.Process.RunAsUser = sandboxIdentity
	}
	if p.Process.RunAsGroup == "" {
		p.Process.RunAsGroup = sandboxIdentity
	}
}

// validatePolicySafety reproduces validate_policy_safety (semantics §1.1 step 6).
func validatePolicySafety(p *sandboxv1.SandboxPolicy) error {
	unsafe := func(format string, args ...any) error {
		return status.Errorf(codes.InvalidArgument, "policy contains unsafe content: "+format, args...)
	}
	if p.GetProcess().GetRunAsUser() != sandboxIdentity || p.GetProcess().GetRunAsGroup() != sandboxIdentity {
		return unsafe("process must run as user and group %q", sandboxIdentity)
	}
	fs := p.GetFilesystem()
	paths := append(append([]string{}, fs.GetReadOnly()...), fs.GetReadWrite()...)
	if len(paths) > maxPolicyPaths {
		return unsafe("filesystem has more than %d paths", maxPolicyPaths)
	}
	for _, path := range paths {
		if len(path) > maxPathLen {
			return unsafe("filesystem path exceeds %d bytes", maxPathLen)
		}
		if !strings.HasPrefix(path, "/") {
			return unsafe("filesystem path %q is not absolute", path)
		}
		for _, seg := range strings.Split(path, "/") {
			if seg == ".." {
				return unsafe("filesystem path %q contains '..'", path)
			}
		}
	}
	for _, path := range fs.GetReadWrite() {
		if path == "/" {
			return unsafe("read_write must not include '/'")
		}
	}
	for key, rule := range p.GetNetworkPolicies() {
		for _, ep := range rule.GetEndpoints() {
			if tldWildcardRE.MatchString(ep.GetHost()) {
				return unsafe("network policy %q host %q is a TLD-wide wildcard", key, ep.GetHost())
			}
		}
	}
	return nil
}

// PolicyHash is the gateway's deterministic policy hash at the contract commit (semantics
// §2.6): SHA-256 over the version as 4 little-endian bytes, the encodings of filesystem,
// landlock and process, then each network policy key and rule encoding in key order.
func PolicyHash(p *sandboxv1.SandboxPolicy) string {
	h := sha256.New()
	var v [4]byte
	binary.LittleEndian.PutUint32(v[:], p.GetVersion())
	h.Write(v[:])
	mo := proto.MarshalOptions{Deterministic: true}
	for _, m := range []proto.Message{p.GetFilesystem(), p.GetLandlock(), p.GetProcess()} {
		if m == nil || !m.ProtoReflect().IsValid() {
			continue
		}
		b, _ := mo.Marshal(m)
		h.Write(b)
	}
	keys := make([]string, 0, len(p.GetNetworkPolicies()))
	for k := range p.GetNetworkPolicies() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.Write([]byte(k))
		b, _ := mo.Marshal(p.GetNetworkPolicies()[k])
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// validateStaticFieldsUnchanged: filesystem may only grow, landlock and process must equal
// the create-time baseline (semantics §2.2).
func validateStaticFieldsUnchanged(baseline, next *sandboxv1.SandboxPolicy) error {
	bad := func(format string, args ...any) error {
		return status.Errorf(codes.InvalidArgument, format, args...)
	}
	if baseline.GetFilesystem() != nil {
		if next.GetFilesystem() == nil {
			return bad("filesystem policy cannot be removed from a running sandbox")
		}
		if baseline.GetFilesystem().GetIncludeWorkdir() != next.GetFilesystem().GetIncludeWorkdir() {
			return bad("filesystem include_workdir cannot change on a running sandbox")
		}
		for _, pair := range [][2][]string{
			{baseline.GetFilesystem().GetReadOnly(), next.GetFilesystem().GetReadOnly()},
			{baseline.GetFilesystem().GetReadWrite(), next.GetFilesystem().GetReadWrite()},
		} {
			for _, path := range pair[0] {
				if !contains(pair[1], path) {
					return bad("filesystem path %q cannot be removed from a running sandbox", path)
				}
			}
		}
	}
	if !proto.Equal(baseline.GetLandlock(), next.GetLandlock()) {
		return bad("landlock policy cannot change on a running sandbox")
	}
	if !proto.Equal(baseline.GetProcess(), next.GetProcess()) {
		return bad("process policy cannot change on a running sandbox")
	}
	return nil
}

func (st *state) globalPolicyActive() bool {
	_, ok := st.settings[""][policySettingKey]
	return ok
}

func (st *state) latest(scope string) *revision {
	revs := st.revisions[scope]
	if len(revs) == 0 {
		return nil
	}
	return revs[len(revs)-1]
}

// insertRevision adds the next version with the given status and supersedes older
// pending/loaded ones; the same hash as the latest returns the latest unchanged.
func (st *state) insertRevision(scope string, p *sandboxv1.SandboxPolicy, stat openshellv1.PolicyStatus) *revision {
	hash := PolicyHash(p)
	if l := st.latest(scope); l != nil && l.hash == hash {
		return l
	}
	var next uint32 = 1
	if l := st.latest(scope); l != nil {
		next = l.version + 1
	}
	st.supersede(scope, next)
	rev := &revision{version: next, hash: hash, status: stat, createdMs: nowMs(), policy: proto.Clone(p).(*sandboxv1.SandboxPolicy)}
	if stat == openshellv1.PolicyStatus_POLICY_STATUS_LOADED {
		rev.loadedMs = nowMs()
	}
	st.revisions[scope] = append(st.revisions[scope], rev)
	return rev
}

func (st *state) supersede(scope string, below uint32) {
	for _, r := range st.revisions[scope] {
		if r.version < below && (r.status == openshellv1.PolicyStatus_POLICY_STATUS_PENDING || r.status == openshellv1.PolicyStatus_POLICY_STATUS_LOADED) {
			r.status = openshellv1.PolicyStatus_POLICY_STATUS_SUPERSEDED
		}
	}
}

// UpdateConfig dispatches policy, setting and merge updates (semantics §2.1-§2.5).
func (s *Simulator) UpdateConfig(_ context.Context, req *openshellv1.UpdateConfigRequest) (*openshellv1.UpdateConfigResponse, error) {
	set := 0
	if req.GetPolicy() != nil {
		set++
	}
	if strings.TrimSpace(req.GetSettingKey()) != "" {
		set++
	}
	if len(req.GetMergeOperations()) > 0 {
		set++
	}
	if set > 1 {
		return nil, status.Error(codes.InvalidArgument, "policy, setting_key, and merge_operations are mutually exclusive")
	}
	if set == 0 {
		return nil, status.Error(codes.InvalidArgument, "one of policy, setting_key or merge_operations is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	if req.GetGlobal() {
		switch {
		case len(req.GetMergeOperations()) > 0:
			return nil, status.Error(codes.InvalidArgument, "merge_operations are not supported in global scope")
		case req.GetPolicy() != nil:
			if req.GetDeleteSetting() {
				return nil, status.Error(codes.InvalidArgument, "delete_setting cannot be combined with policy")
			}
			return st.updateGlobalPolicy(req.GetPolicy())
		default:
			return st.updateSetting("", req)
		}
	}
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	r := st.sandboxes[req.GetName()]
	if r == nil {
		return nil, status.Error(codes.NotFound, "sandbox not found")
	}
	switch {
	case req.GetPolicy() != nil:
		return st.updateSandboxPolicy(r, req.GetPolicy(), req.GetExpectedResourceVersion())
	case len(req.GetMergeOperations()) > 0:
		return st.mergePolicy(r, req.GetMergeOperations())
	default:
		return st.updateSetting(r.sb.Metadata.Name, req)
	}
}

func (st *state) updateSandboxPolicy(r *sandboxRec, in *sandboxv1.SandboxPolicy, expectedRV uint64) (*openshellv1.UpdateConfigResponse, error) {
	if st.globalPolicyActive() {
		return nil, status.Error(codes.FailedPrecondition, "policy is managed globally; delete global policy before sandbox policy update")
	}
	p := proto.Clone(in).(*sandboxv1.SandboxPolicy)
	applyIdentityDefaults(p)
	if baseline := r.sb.Spec.Policy; baseline != nil {
		if err := validateStaticFieldsUnchanged(baseline, p); err != nil {
			return nil, err
		}
		if err := validatePolicySafety(p); err != nil {
			return nil, err
		}
	} else {
		// Backfill of the baseline through a CAS on the sandbox (semantics §2.2 step 3).
		if err := st.checkExpectedRV(r, expectedRV, "policy backfill"); err != nil {
			return nil, err
		}
		r.sb.Spec.Policy = proto.Clone(p).(*sandboxv1.SandboxPolicy)
		st.bump(r)
	}
	rev := st.insertRevision(r.sb.Metadata.Id, p, openshellv1.PolicyStatus_POLICY_STATUS_PENDING)
	st.notify(r.sb.Metadata.Id)
	return &openshellv1.UpdateConfigResponse{Version: rev.version, PolicyHash: rev.hash}, nil
}

func (st *state) updateGlobalPolicy(in *sandboxv1.SandboxPolicy) (*openshellv1.UpdateConfigResponse, error) {
	p := proto.Clone(in).(*sandboxv1.SandboxPolicy)
	applyIdentityDefaults(p)
	if err := validatePolicySafety(p); err != nil {
		return nil, err
	}
	hash := PolicyHash(p)
	rev := st.latest(globalScope)
	if rev == nil || rev.hash != hash || rev.status != openshellv1.PolicyStatus_POLICY_STATUS_LOADED {
		var next uint32 = 1
		if rev != nil {
			next = rev.version + 1
		}
		st.supersede(globalScope, next)
		rev = &revision{version: next, hash: hash, status: openshellv1.PolicyStatus_POLICY_STATUS_LOADED, createdMs: nowMs(), loadedMs: nowMs(), policy: p}
		st.revisions[globalScope] = append(st.revisions[globalScope], rev)
	}
	b, _ := proto.Marshal(p)
	value := &sandboxv1.SettingValue{Value: &sandboxv1.SettingValue_StringValue{StringValue: hex.EncodeToString(b)}}
	if st.settings[""] == nil {
		st.settings[""] = map[string]*sandboxv1.SettingValue{}
	}
	if old, ok := st.settings[""][policySettingKey]; !ok || !proto.Equal(old, value) {
		st.settings[""][policySettingKey] = value
		st.settingsRev[""]++
	}
	return &openshellv1.UpdateConfigResponse{Version: rev.version, PolicyHash: rev.hash, SettingsRevision: st.settingsRev[""]}, nil
}

type settingKind int

const (
	kindBool settingKind = iota
	kindString
)

// registeredSettings are the gateway's setting keys at the contract commit (semantics §2.5).
var registeredSettings = map[string]settingKind{
	"providers_v2_enabled":           kindBool,
	"ocsf_json_enabled":              kindBool,
	"agent_policy_proposals_enabled": kindBool,
	"proposal_approval_mode":         kindString,
}

// RegisteredSettingKeys lists the setting keys the simulated gateway accepts, sorted.
func RegisteredSettingKeys() []string {
	keys := make([]string, 0, len(registeredSettings))
	for k := range registeredSettings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func validateSetting(key string, v *sandboxv1.SettingValue) error {
	kind, ok := registeredSettings[key]
	if !ok {
		return status.Errorf(codes.InvalidArgument, "unknown setting key '%s'. Allowed keys: %s", key, strings.Join(RegisteredSettingKeys(), ", "))
	}
	if v == nil || v.Value == nil {
		return status.Errorf(codes.InvalidArgument, "setting_value is required for key '%s'", key)
	}
	switch kind {
	case kindBool:
		if _, ok := v.Value.(*sandboxv1.SettingValue_BoolValue); !ok {
			return status.Errorf(codes.InvalidArgument, "setting '%s' expects a bool value", key)
		}
	case kindString:
		sv, ok := v.Value.(*sandboxv1.SettingValue_StringValue)
		if !ok {
			return status.Errorf(codes.InvalidArgument, "setting '%s' expects a string value", key)
		}
		if sv.StringValue != "manual" && sv.StringValue != "auto" {
			return status.Errorf(codes.InvalidArgument, "setting '%s' must be one of: manual, auto", key)
		}
	}
	return nil
}

// updateSetting sets or deletes one key in a scope ("" is global, else a sandbox name).
func (st *state) updateSetting(scope string, req *openshellv1.UpdateConfigRequest) (*openshellv1.UpdateConfigResponse, error) {
	key := strings.TrimSpace(req.GetSettingKey())
	if key == policySettingKey {
		if scope == "" && req.GetDeleteSetting() {
			_, existed := st.settings[""][policySettingKey]
			if existed {
				delete(st.settings[""], policySettingKey)
				st.settingsRev[""]++
				st.supersede(globalScope, ^uint32(0))
			}
			return &openshellv1.UpdateConfigResponse{SettingsRevision: st.settingsRev[""], Deleted: existed}, nil
		}
		return nil, status.Error(codes.InvalidArgument, "reserved key 'policy' must be set via the policy field")
	}
	if scope != "" {
		if _, ok := st.settings[""][key]; ok {
			return nil, status.Errorf(codes.FailedPrecondition, "setting '%s' is managed globally", key)
		}
	}
	if st.settings[scope] == nil {
		st.settings[scope] = map[string]*sandboxv1.SettingValue{}
	}
	if req.GetDeleteSetting() {
		if _, ok := registeredSettings[key]; !ok {
			return nil, validateSetting(key, nil)
		}
		_, existed := st.settings[scope][key]
		if existed {
			delete(st.settings[scope], key)
			st.settingsRev[scope]++
		}
		return &openshellv1.UpdateConfigResponse{SettingsRevision: st.settingsRev[scope], Deleted: existed}, nil
	}
	if err := validateSetting(key, req.GetSettingValue()); err != nil {
		return nil, err
	}
	if old, ok := st.settings[scope][key]; !ok || !proto.Equal(old, req.GetSettingValue()) {
		st.settings[scope][key] = proto.Clone(req.GetSettingValue()).(*sandboxv1.SettingValue)
		st.settingsRev[scope]++
	}
	return &openshellv1.UpdateConfigResponse{SettingsRevision: st.settingsRev[scope]}, nil
}

// GetGatewayConfig lists the registered global settings (empty where unset), without "policy".
func (s *Simulator) GetGatewayConfig(context.Context, *sandboxv1.GetGatewayConfigRequest) (*sandboxv1.GetGatewayConfigResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &sandboxv1.GetGatewayConfigResponse{Settings: map[string]*sandboxv1.SettingValue{}, SettingsRevision: s.state.settingsRev[""]}
	for k := range registeredSettings {
		v := s.state.settings[""][k]
		if v == nil {
			v = &sandboxv1.SettingValue{}
		}
		out.Settings[k] = proto.Clone(v).(*sandboxv1.SettingValue)
	}
	return out, nil
}

// GetSandboxConfig is the supervisor's poll; it lazily creates v1 from spec.policy (§2.9).
func (s *Simulator) GetSandboxConfig(_ context.Context, req *sandboxv1.GetSandboxConfigRequest) (*sandboxv1.GetSandboxConfigResponse, error) {
	if req.GetSandboxId() == "" {
		return nil, status.Error(codes.InvalidArgument, "sandbox_id is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	r := st.sandboxByID(req.GetSandboxId())
	if r == nil {
		return nil, status.Error(codes.NotFound, "sandbox not found")
	}
	st.backfillV1(r)
	out := &sandboxv1.GetSandboxConfigResponse{Settings: map[string]*sandboxv1.EffectiveSetting{}, PolicySource: sandboxv1.PolicySource_POLICY_SOURCE_SANDBOX}
	if g := st.latest(globalScope); g != nil && st.globalPolicyActive() {
		out.Policy, out.Version, out.PolicyHash = g.policy, g.version, g.hash
		out.PolicySource = sandboxv1.PolicySource_POLICY_SOURCE_GLOBAL
		out.GlobalPolicyVersion = g.version
	} else if l := st.latest(r.sb.Metadata.Id); l != nil {
		out.Policy, out.Version, out.PolicyHash = l.policy, l.version, l.hash
	}
	for k := range registeredSettings {
		if v, ok := st.settings[""][k]; ok {
			out.Settings[k] = &sandboxv1.EffectiveSetting{Value: v, Scope: sandboxv1.SettingScope_SETTING_SCOPE_GLOBAL}
		} else if v, ok := st.settings[r.sb.Metadata.Name][k]; ok {
			out.Settings[k] = &sandboxv1.EffectiveSetting{Value: v, Scope: sandboxv1.SettingScope_SETTING_SCOPE_SANDBOX}
		} else {
			out.Settings[k] = &sandboxv1.EffectiveSetting{}
		}
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%v|%s|%d", out.PolicySource, out.PolicyHash, st.settingsRev[""]+st.settingsRev[r.sb.Metadata.Name])))
	out.ConfigRevision = binary.BigEndian.Uint64(sum[:8])
	psum := sha256.Sum256([]byte(strings.Join(r.sb.Spec.Providers, ",")))
	out.ProviderEnvRevision = binary.BigEndian.Uint64(psum[:8])
	return out, nil
}

// backfillV1 inserts v1 (LOADED) from spec.policy when a sandbox has no revision yet.
func (st *state) backfillV1(r *sandboxRec) {
	if len(st.revisions[r.sb.Metadata.Id]) > 0 || r.sb.Spec.Policy == nil {
		return
	}
	st.insertRevision(r.sb.Metadata.Id, r.sb.Spec.Policy, openshellv1.PolicyStatus_POLICY_STATUS_LOADED)
}

func (rev *revision) toProto(withPolicy bool) *openshellv1.SandboxPolicyRevision {
	out := &openshellv1.SandboxPolicyRevision{Version: rev.version, PolicyHash: rev.hash, Status: rev.status, LoadError: rev.loadError, CreatedAtMs: rev.createdMs, LoadedAtMs: rev.loadedMs}
	if withPolicy {
		out.Policy = proto.Clone(rev.policy).(*sandboxv1.SandboxPolicy)
	}
	return out
}

// GetSandboxPolicyStatus returns one revision (version 0: the highest) and the active version.
func (s *Simulator) GetSandboxPolicyStatus(_ context.Context, req *openshellv1.GetSandboxPolicyStatusRequest) (*openshellv1.GetSandboxPolicyStatusResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	scope, active := globalScope, uint32(0)
	notFound := "no global policy revision found"
	if !req.GetGlobal() {
		if req.GetName() == "" {
			return nil, status.Error(codes.InvalidArgument, "name is required")
		}
		r := st.sandboxes[req.GetName()]
		if r == nil {
			return nil, status.Error(codes.NotFound, "sandbox not found")
		}
		scope, active = r.sb.Metadata.Id, r.sb.Status.CurrentPolicyVersion
		notFound = "no policy revision found for this sandbox"
	}
	revs := st.revisions[scope]
	var found *revision
	for _, rev := range revs {
		if req.GetVersion() == 0 || rev.version == req.GetVersion() {
			found = rev
		}
	}
	if found == nil {
		return nil, status.Error(codes.NotFound, notFound)
	}
	return &openshellv1.GetSandboxPolicyStatusResponse{Revision: found.toProto(true), ActiveVersion: active}, nil
}

// ListSandboxPolicies lists revisions newest first, without their policy payloads.
func (s *Simulator) ListSandboxPolicies(_ context.Context, req *openshellv1.ListSandboxPoliciesRequest) (*openshellv1.ListSandboxPoliciesResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	scope := globalScope
	if !req.GetGlobal() {
		if req.GetName() == "" {
			return nil, status.Error(codes.InvalidArgument, "name is required")
		}
		r := st.sandboxes[req.GetName()]
		if r == nil {
			return nil, status.Error(codes.NotFound, "sandbox not found")
		}
		scope = r.sb.Metadata.Id
	}
	revs := append([]*revision{}, st.revisions[scope]...)
	sort.Slice(revs, func(i, j int) bool { return revs[i].version > revs[j].version })
	out := &openshellv1.ListSandboxPoliciesResponse{}
	for _, rev := range page(revs, req.GetLimit(), req.GetOffset(), 50) {
		out.Revisions = append(out.Revisions, rev.toProto(false))
	}
	return out, nil
}

// FailPolicyLoad makes the simulated supervisor of a sandbox report its next pending revision
// FAILED with loadError; an empty loadError restores normal loading.
func (s *Simulator) FailPolicyLoad(sandboxName, loadError string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if loadError == "" {
		delete(s.state.policyFail, sandboxName)
		return
	}
	s.state.policyFail[sandboxName] = loadError
}

// supervisorLoop is the simulated in-sandbox supervisor of every READY sandbox: it polls its
// config and reports the newest pending revision LOADED (or FAILED when injected). Unlike the
// e98 supervisor it also acknowledges the initial revision (the fixed upstream behaviour,
// ff9af8e32), so current_policy_version reaches 1 once v1 exists.
func (s *Simulator) supervisorLoop() {
	t := time.NewTicker(s.opts.PolicyPollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopTick:
			return
		case <-t.C:
			s.superviseOnce()
		}
	}
}

func (s *Simulator) superviseOnce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	for name, r := range st.sandboxes {
		if r.sb.Status.Phase != openshellv1.SandboxPhase_SANDBOX_PHASE_READY {
			continue
		}
		st.backfillV1(r)
		if st.globalPolicyActive() {
			continue
		}
		latest := st.latest(r.sb.Metadata.Id)
		if latest == nil {
			continue
		}
		switch {
		case latest.status == openshellv1.PolicyStatus_POLICY_STATUS_PENDING && st.policyFail[name] != "":
			latest.status = openshellv1.PolicyStatus_POLICY_STATUS_FAILED
			latest.loadError = st.policyFail[name]
			st.log(r, logSourceSandbox, "ERROR", "openshell_sandbox::policy", fmt.Sprintf("failed to load policy version %d: %s", latest.version, latest.loadError))
			st.notify(r.sb.Metadata.Id)
		case latest.status == openshellv1.PolicyStatus_POLICY_STATUS_PENDING ||
			(latest.status == openshellv1.PolicyStatus_POLICY_STATUS_LOADED && r.sb.Status.CurrentPolicyVersion != latest.version):
			latest.status = openshellv1.PolicyStatus_POLICY_STATUS_LOADED
			latest.loadedMs = nowMs()
			st.supersede(r.sb.Metadata.Id, latest.version)
			r.sb.Status.CurrentPolicyVersion = latest.version
			st.log(r, logSourceSandbox, "INFO", "openshell_sandbox::policy", fmt.Sprintf("loaded policy version %d (%s)", latest.version, latest.hash))
			st.bump(r)
		}
	}
}
