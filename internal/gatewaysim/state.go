package gatewaysim

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	inferencev1 "github.com/openshell-operator/openshell-operator/gen/openshell/inference/v1"
	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// globalScope keys gateway-wide policy revisions, as the real gateway does.
const globalScope = "__global__"

type sandboxRec struct {
	sb     *openshellv1.Sandbox
	seq    int64
	events []*openshellv1.PlatformEvent
	logs   []*openshellv1.SandboxLogLine
	// forced pins a phase set through ForcePhase (or DELETING) so the simulated driver and
	// supervisor leave it alone.
	forced bool
	// supervisor says whether the simulated supervisor session is connected.
	supervisor bool
}

type providerRec struct {
	p   *datamodelv1.Provider
	seq int64
}

type revision struct {
	version   uint32
	hash      string
	status    openshellv1.PolicyStatus
	loadError string
	createdMs int64
	loadedMs  int64
	policy    *sandboxv1.SandboxPolicy
}

type draftChunk struct {
	chunk   *openshellv1.PolicyChunk
	sandbox string
}

type state struct {
	seq          int64
	sandboxes    map[string]*sandboxRec
	providers    map[string]*providerRec
	profiles     map[string]*openshellv1.ProviderProfile // custom provider profiles by id
	revisions    map[string][]*revision                  // by sandbox id, or globalScope
	settings     map[string]map[string]*sandboxv1.SettingValue
	settingsRev  map[string]uint64
	inference    map[string]*inferencev1.GetClusterInferenceResponse
	drafts       map[string]*draftChunk // by chunk id
	draftOrder   []string
	draftVersion map[string]uint64 // by sandbox name: accepted submissions
	history      map[string][]*openshellv1.DraftHistoryEntry
	sessions     map[string]string // SSH token -> sandbox id
	policyFail   map[string]string // sandbox name -> injected load error
	watchers     map[string]map[chan struct{}]struct{}
	logWatchers  map[string]map[chan struct{}]struct{} // woken when a log line is written
	timers       []*time.Timer
}

func newState() *state {
	return &state{
		sandboxes:    map[string]*sandboxRec{},
		providers:    map[string]*providerRec{},
		profiles:     map[string]*openshellv1.ProviderProfile{},
		revisions:    map[string][]*revision{},
		settings:     map[string]map[string]*sandboxv1.SettingValue{},
		settingsRev:  map[string]uint64{},
		inference:    map[string]*inferencev1.GetClusterInferenceResponse{},
		drafts:       map[string]*draftChunk{},
		draftVersion: map[string]uint64{},
		history:      map[string][]*openshellv1.DraftHistoryEntry{},
		sessions:     map[string]string{},
		policyFail:   map[string]string{},
		watchers:     map[string]map[chan struct{}]struct{}{},
		logWatchers:  map[string]map[chan struct{}]struct{}{},
	}
}

func (st *state) stopTimers() {
	for _, t := range st.timers {
		t.Stop()
	}
	st.timers = nil
	for _, all := range []map[string]map[chan struct{}]struct{}{st.watchers, st.logWatchers} {
		for id, ws := range all {
			for ch := range ws {
				close(ch)
			}
			delete(all, id)
		}
	}
}

func (st *state) next() int64 {
	st.seq++
	return st.seq
}

// notify wakes every WatchSandbox stream of the sandbox id.
func (st *state) notify(id string) { wake(st.watchers[id]) }

func wake(ws map[chan struct{}]struct{}) {
	for ch := range ws {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (st *state) sandboxByID(id string) *sandboxRec {
	for _, r := range st.sandboxes {
		if r.sb.GetMetadata().GetId() == id {
			return r
		}
	}
	return nil
}

func nowMs() int64 { return time.Now().UnixMilli() }

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var petAdjectives = []string{
	"able", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring", "eager",
	"fancy", "gentle", "glad", "happy", "honest", "jolly", "keen", "kind", "lively", "lucky",
	"merry", "nimble", "noble", "proud", "quick", "quiet", "rapid", "sunny", "swift", "witty",
}
var petNouns = []string{
	"badger", "beaver", "bison", "cobra", "condor", "crane", "dingo", "eagle", "falcon", "ferret",
	"gecko", "heron", "ibis", "jackal", "koala", "lemur", "lynx", "marten", "mole", "newt",
	"otter", "panda", "puffin", "quail", "raven", "salmon", "tapir", "toucan", "walrus", "yak",
}

// petname is petname::petname(2, "-"): two words joined by "-", such as "brave-otter".
func petname() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return petAdjectives[int(b[0])%len(petAdjectives)] + "-" + petNouns[int(b[1])%len(petNouns)]
}

func randomLetters(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return string(b)
}

var (
	labelNameRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`)
	labelPrefixRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)
	dns1123SubRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// validateLabels applies the gateway's Kubernetes-style label rules (semantics §1.6).
func validateLabels(labels map[string]string) error {
	for k, v := range labels {
		if len(k) == 0 || len(k) > 253 {
			return status.Errorf(codes.InvalidArgument, "invalid label key %q: must be 1-253 characters", k)
		}
		name := k
		if i := strings.LastIndex(k, "/"); i >= 0 {
			prefix := k[:i]
			name = k[i+1:]
			if prefix == "" || !labelPrefixRE.MatchString(prefix) || strings.Contains(prefix, "..") {
				return status.Errorf(codes.InvalidArgument, "invalid label key %q: prefix must be a DNS subdomain", k)
			}
		}
		if !labelNameRE.MatchString(name) {
			return status.Errorf(codes.InvalidArgument, "invalid label key %q: name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric", k)
		}
		if v != "" && !labelNameRE.MatchString(v) {
			return status.Errorf(codes.InvalidArgument, "invalid label value %q for key %q", v, k)
		}
	}
	return nil
}

// parseSelector parses "k=v,k2=v2" (equality only; empty pairs ignored).
func parseSelector(sel string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(sel, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "invalid label selector %q: expected key=value", pair)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := validateLabels(out); err != nil {
		return nil, err
	}
	return out, nil
}

func matches(labels, sel map[string]string) bool {
	for k, v := range sel {
		got, ok := labels[k]
		if !ok || got != v {
			return false
		}
	}
	return true
}

// page applies the gateway's limit/offset rules: 0 means def, at most 1000.
func page[T any](items []T, limit, offset uint32, def uint32) []T {
	if limit == 0 {
		limit = def
	}
	if limit > 1000 {
		limit = 1000
	}
	if int(offset) >= len(items) {
		return nil
	}
	items = items[offset:]
	if int(limit) < len(items) {
		items = items[:limit]
	}
	return items
}
