// Package soak is a randomized, seeded fault soak: real processes (kube-apiserver + etcd, two
// gateway simulators, two managers with leader election) driven by a schedule of user actions
// and faults drawn from a seed, with invariants checked during the run and after a quiet
// period (docs/reliability.md). The same seed gives the same schedule; a failure prints the
// seed and the history that led to it. The schedule generator below is pure and runs in
// `make test`; the soak itself has the build tag soak (`make soak`).
package soak

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind is what a step does: a user action or a fault.
type Kind string

// User actions.
const (
	ActCreate        Kind = "create"
	ActEditInPlace   Kind = "edit-in-place"  // attach/detach a provider or change an inline policy's network rule
	ActEditRecreate  Kind = "edit-recreate"  // change the environment: Recreate makes a new sandbox, OnDelete waits
	ActApplyOnDelete Kind = "ondelete-apply" // the user deletes the gateway sandbox of an OnDelete change
	ActDelete        Kind = "delete"
	ActPolicyEdit    Kind = "policy-edit"   // a shared SandboxPolicy's network rule changes (in place)
	ActProviderEdit  Kind = "provider-edit" // a Provider's config changes
	ActSecretRotate  Kind = "secret-rotate" // a Provider's credentials Secret gets a new value
	ActConflicts     Kind = "api-conflicts" // label edits race the operator's writes for a few seconds
)

// Faults.
const (
	FaultError       Kind = "gateway-error"   // calls of one method (or all) fail with a retryable code
	FaultLatency     Kind = "gateway-latency" // calls of one method (or all) are delayed, some past the timeout
	FaultOutage      Kind = "gateway-outage"  // every call UNAVAILABLE; the operator's calls must stay bounded
	FaultStreamCut   Kind = "stream-cut"      // every WatchSandbox stream ends, state kept
	FaultRestart     Kind = "gateway-restart" // kill -9 the simulator and start it empty (state loss)
	FaultManagerKill Kind = "manager-kill"    // kill -9 a manager (leader or follower), restart it
	FaultLeaderPause Kind = "leader-pause"    // SIGSTOP the leader past its lease, then SIGCONT
)

// IsFault tells faults from user actions.
func (k Kind) IsFault() bool {
	return slices.Contains([]Kind{FaultError, FaultLatency, FaultOutage, FaultStreamCut, FaultRestart, FaultManagerKill, FaultLeaderPause}, k)
}

// Namespaces, gateways and per-namespace objects of every run.
var (
	Namespaces = []string{"soak-a", "soak-b", "soak-c"}
	Gateways   = []string{"gw-1", "gw-2"}
)

// ProviderName is the i-th (0 or 1) Provider of a gateway in every namespace.
func ProviderName(gw, i int) string { return fmt.Sprintf("p%d-%s", i+1, Gateways[gw]) }

// SecretName holds the credentials of a Provider.
func SecretName(provider string) string { return provider + "-creds" }

// CredentialKey is the one key of a Provider's Secret: distinct per Provider of a gateway, since
// a sandbox attaching two providers with the same key is refused by the gateway.
func CredentialKey(secretOrProvider string) string {
	return "SOAK_" + strings.ToUpper(strings.SplitN(secretOrProvider, "-", 2)[0]) + "_KEY"
}

// PolicyName is the shared SandboxPolicy of every namespace.
const PolicyName = "shared"

// Policy kinds of a sandbox.
const (
	PolicyNone   = ""
	PolicyRef    = "ref"
	PolicyInline = "inline"
)

// Step is one scheduled user action or fault.
type Step struct {
	At   time.Duration
	Kind Kind
	// NS and Name target a Sandbox (or the Provider / Secret / SandboxPolicy for their kinds).
	NS, Name string
	// GW is the gateway index.
	GW int
	// Create: the new sandbox's spec.
	Providers []string
	Policy    string
	OnDelete  bool
	Orphan    bool
	// Gen is the new environment generation (edit-recreate), policy host generation
	// (edit-in-place of an inline policy, policy-edit), config generation (provider-edit).
	Gen int
	// Value is a rotated credential value.
	Value string
	// Faults.
	Method, Code string
	Times        int
	For          time.Duration
	Latency      time.Duration
	// Manager is "leader" or "follower".
	Manager string
}

func (s Step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%8s %-16s", s.At.Round(time.Millisecond), s.Kind)
	add := func(format string, args ...any) { b.WriteString(" "); fmt.Fprintf(&b, format, args...) }
	if s.Name != "" {
		add("%s/%s", s.NS, s.Name)
	} else if s.NS != "" {
		add("ns=%s", s.NS)
	}
	switch s.Kind {
	case ActCreate:
		add("gw=%s providers=%v policy=%q onDelete=%v orphan=%v", Gateways[s.GW], s.Providers, s.Policy, s.OnDelete, s.Orphan)
	case ActEditInPlace:
		if s.Providers != nil {
			add("providers=%v", s.Providers)
		} else {
			add("policy host gen=%d", s.Gen)
		}
	case ActEditRecreate, ActPolicyEdit, ActProviderEdit:
		add("gen=%d", s.Gen)
	case ActSecretRotate:
		add("(new value, not shown)")
	case ActConflicts:
		add("for=%s", s.For)
	case FaultError:
		add("gw=%s method=%s code=%s times=%d for=%s", Gateways[s.GW], s.Method, s.Code, s.Times, s.For)
	case FaultLatency:
		add("gw=%s method=%s latency=%s for=%s", Gateways[s.GW], s.Method, s.Latency, s.For)
	case FaultOutage, FaultRestart:
		add("gw=%s for=%s", Gateways[s.GW], s.For)
	case FaultStreamCut:
		add("gw=%s", Gateways[s.GW])
	case FaultManagerKill, FaultLeaderPause:
		add("%s for=%s", s.Manager, s.For)
	}
	return b.String()
}

// sandboxModel is what the generator knows of a sandbox it created.
type sandboxModel struct {
	ns, name  string
	gw        int
	providers []string
	policy    string
	onDelete  bool
	pending   bool // an OnDelete change waits for the user's delete
	env, host int
}

// Schedule parameters. The lease is what the managers run with (suite); a pause outlasts it.
const (
	initialSandboxes = 10
	minLive, maxLive = 8, 22
	leaseDuration    = 6 * time.Second
)

var (
	faultMethods = []string{"*", "CreateSandbox", "DeleteSandbox", "GetSandbox", "ListSandboxes", "UpdateConfig",
		"AttachSandboxProvider", "DetachSandboxProvider", "CreateProvider", "UpdateProvider", "WatchSandbox"}
	// Retryable codes only: a terminal refusal (INVALID_ARGUMENT...) stalls a resource by
	// design, which a soak would then read as "never converged".
	faultCodes = []string{"Unavailable", "Internal", "Aborted", "ResourceExhausted", "DeadlineExceeded"}
)

// Generate draws the schedule of a run of duration d from seed: the same seed and duration
// give the same steps. Targets are chosen from the generator's own model of what the steps
// created, never from the cluster, so the schedule does not depend on timing.
func Generate(seed uint64, d time.Duration) []Step {
	r := rand.New(rand.NewPCG(seed, seed^0x50a4_50a4))
	g := &generator{r: r, seed: seed}
	var steps []Step
	for i := range initialSandboxes {
		steps = append(steps, g.create(time.Duration(i)*300*time.Millisecond))
	}
	nextAction := 4 * time.Second
	nextFault := 8*time.Second + g.dur(0, 6*time.Second)
	for {
		if nextFault <= nextAction {
			if nextFault >= d {
				break
			}
			steps = append(steps, g.fault(nextFault))
			nextFault += g.dur(8*time.Second, 25*time.Second)
			continue
		}
		if nextAction >= d {
			break
		}
		if s, ok := g.action(nextAction); ok {
			steps = append(steps, s)
		}
		nextAction += g.dur(700*time.Millisecond, 3500*time.Millisecond)
	}
	return steps
}

type generator struct {
	r       *rand.Rand
	seed    uint64
	next    int
	live    []*sandboxModel
	policy  map[string]int // namespace -> shared policy host generation
	config  map[string]int // provider key -> config generation
	rotated int
}

func (g *generator) dur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(g.r.Int64N(int64(hi-lo)+1)).Round(100*time.Millisecond)
}

func (g *generator) pick(n int) int { return g.r.IntN(n) }

func (g *generator) create(at time.Duration) Step {
	g.next++
	m := &sandboxModel{ns: Namespaces[g.pick(len(Namespaces))], name: fmt.Sprintf("sb-%03d", g.next), gw: g.pick(len(Gateways))}
	switch g.pick(4) {
	case 0, 1:
	case 2:
		m.providers = []string{ProviderName(m.gw, 0)}
	case 3:
		m.providers = []string{ProviderName(m.gw, 0), ProviderName(m.gw, 1)}
	}
	m.policy = []string{PolicyNone, PolicyRef, PolicyInline}[g.pick(3)]
	m.onDelete = g.pick(4) == 0
	orphan := g.pick(5) == 0
	g.live = append(g.live, m)
	return Step{At: at, Kind: ActCreate, NS: m.ns, Name: m.name, GW: m.gw, Providers: m.providers, Policy: m.policy, OnDelete: m.onDelete, Orphan: orphan}
}

// action draws a user action by weight; the weights keep between minLive and maxLive sandboxes.
func (g *generator) action(at time.Duration) (Step, bool) {
	n := len(g.live)
	var pending []*sandboxModel
	for _, m := range g.live {
		if m.pending {
			pending = append(pending, m)
		}
	}
	weights := []struct {
		k Kind
		w int
	}{
		{ActCreate, map[bool]int{true: 8, false: 3}[n < minLive] * btoi(n < maxLive)},
		{ActDelete, map[bool]int{true: 8, false: 2}[n > maxLive] * btoi(n > 0)},
		{ActEditInPlace, 3 * btoi(n > 0)},
		{ActEditRecreate, 2 * btoi(n > 0)},
		{ActApplyOnDelete, 3 * btoi(len(pending) > 0)},
		{ActPolicyEdit, 1},
		{ActProviderEdit, 1},
		{ActSecretRotate, 1},
		{ActConflicts, 1 * btoi(n > 0)},
	}
	total := 0
	for _, w := range weights {
		total += w.w
	}
	x := g.pick(total)
	var k Kind
	for _, w := range weights {
		if x < w.w {
			k = w.k
			break
		}
		x -= w.w
	}
	s := Step{At: at, Kind: k}
	switch k {
	case ActCreate:
		return g.create(at), true
	case ActDelete:
		i := g.pick(n)
		m := g.live[i]
		g.live = slices.Delete(g.live, i, i+1)
		s.NS, s.Name, s.GW = m.ns, m.name, m.gw
	case ActEditInPlace:
		m := g.live[g.pick(n)]
		s.NS, s.Name, s.GW = m.ns, m.name, m.gw
		if m.policy == PolicyInline && g.pick(2) == 0 {
			m.host++
			s.Gen = m.host
			break
		}
		// Toggle the second provider; the first stays, so the list is never emptied to nil.
		p0, p1 := ProviderName(m.gw, 0), ProviderName(m.gw, 1)
		switch {
		case slices.Contains(m.providers, p1):
			m.providers = []string{p0}
		case len(m.providers) == 0:
			m.providers = []string{p0}
		default:
			m.providers = []string{p0, p1}
		}
		s.Providers = m.providers
	case ActEditRecreate:
		m := g.live[g.pick(n)]
		m.env++
		m.pending = m.onDelete
		s.NS, s.Name, s.GW, s.Gen = m.ns, m.name, m.gw, m.env
	case ActApplyOnDelete:
		m := pending[g.pick(len(pending))]
		m.pending = false
		s.NS, s.Name, s.GW = m.ns, m.name, m.gw
	case ActPolicyEdit:
		if g.policy == nil {
			g.policy = map[string]int{}
		}
		s.NS = Namespaces[g.pick(len(Namespaces))]
		g.policy[s.NS]++
		s.Name, s.Gen = PolicyName, g.policy[s.NS]
	case ActProviderEdit, ActSecretRotate:
		s.NS, s.GW = Namespaces[g.pick(len(Namespaces))], g.pick(len(Gateways))
		s.Name = ProviderName(s.GW, g.pick(2))
		if k == ActProviderEdit {
			if g.config == nil {
				g.config = map[string]int{}
			}
			g.config[s.NS+"/"+s.Name]++
			s.Gen = g.config[s.NS+"/"+s.Name]
		} else {
			g.rotated++
			s.Name = SecretName(s.Name)
			s.Value = fmt.Sprintf("sk-soak-%d-%d-%016x", g.seed, g.rotated, g.r.Uint64())
		}
	case ActConflicts:
		s.For = g.dur(2*time.Second, 4*time.Second)
	}
	return s, true
}

func (g *generator) fault(at time.Duration) Step {
	kinds := []struct {
		k Kind
		w int
	}{{FaultError, 3}, {FaultLatency, 2}, {FaultOutage, 2}, {FaultStreamCut, 2}, {FaultRestart, 1}, {FaultManagerKill, 2}, {FaultLeaderPause, 1}}
	total := 0
	for _, k := range kinds {
		total += k.w
	}
	x := g.pick(total)
	var k Kind
	for _, c := range kinds {
		if x < c.w {
			k = c.k
			break
		}
		x -= c.w
	}
	s := Step{At: at, Kind: k, GW: g.pick(len(Gateways))}
	switch k {
	case FaultError:
		s.Method, s.Code = faultMethods[g.pick(len(faultMethods))], faultCodes[g.pick(len(faultCodes))]
		s.Times = -1
		if g.pick(2) == 0 {
			s.Times = 1 + g.pick(5)
		}
		s.For = g.dur(3*time.Second, 12*time.Second)
	case FaultLatency:
		s.Method = faultMethods[g.pick(len(faultMethods))]
		s.Latency = g.dur(300*time.Millisecond, 3*time.Second)
		s.For = g.dur(4*time.Second, 15*time.Second)
	case FaultOutage:
		s.For = g.dur(8*time.Second, 20*time.Second)
	case FaultRestart:
		s.For = g.dur(0, 8*time.Second)
		for _, m := range g.live {
			if m.gw == s.GW {
				m.pending = false // recreated empty: the gateway takes the new spec
			}
		}
	case FaultManagerKill:
		s.Manager = "leader"
		if g.pick(10) < 3 {
			s.Manager = "follower"
		}
		s.For = g.dur(0, 6*time.Second)
	case FaultLeaderPause:
		s.Manager = "leader"
		s.For = leaseDuration + g.dur(2*time.Second, 5*time.Second)
	}
	return s
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CountKinds counts steps by kind, for the run's summary.
func CountKinds(steps []Step) map[Kind]int {
	out := map[Kind]int{}
	for _, s := range steps {
		out[s.Kind]++
	}
	return out
}
