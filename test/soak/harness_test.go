//go:build soak

package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	"github.com/openshell-operator/openshell-operator/internal/devenv"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

const systemNS = "openshell-system"

// Timings of the processes under test.
const (
	provisioningDelay = 500 * time.Millisecond
	gatewayTimeout    = 2 * time.Second
	// observationInterval is the watch mode's full list period (the operator's default): a
	// status may lag the gateway by this much when no stream follows the sandbox.
	observationInterval = time.Minute
	// lieBound is how long Ready=True may disagree with a calm gateway: one observation
	// interval plus processing slack on a shared machine.
	lieBound = observationInterval + 20*time.Second
	// calmAfter is how long after a fault on a gateway (or a manager) its observations are
	// not held against the operator yet.
	calmAfterGateway = 5 * time.Second
	calmAfterManager = 20 * time.Second
	checkEvery       = 2 * time.Second
	convergeTimeout  = 6 * time.Minute
	stabilityWindow  = 20 * time.Second
)

type simProc struct {
	name   string
	p      *devenv.Process
	addr   string
	admin  string
	certs  *gatewaysim.CertBundle
	client *gateway.Client
}

type mgrProc struct {
	name    string
	p       *devenv.Process
	metrics string
	// expect is set while the harness itself makes the process exit (kill, pause).
	expect bool
}

// orphan is a gateway sandbox left behind by a Sandbox deleted with deletionPolicy Orphan.
type orphan struct {
	gw         int
	name, id   string
	lost       bool // its gateway restarted empty since
	resourceNS string
	// uncertain: when the resource was deleted a recreation was pending or its sandbox was
	// never seen, so there may have been nothing to leave behind.
	uncertain bool
}

type outage struct {
	gw             int
	window         time.Duration
	calls, bound   int
	judged         bool
	managerFaulted bool
}

type harness struct {
	seed  uint64
	d     time.Duration
	start time.Time
	work  string
	env   *devenv.Env
	k8s   client.Client
	sims  []*simProc
	mgrs  []*mgrProc

	mu      sync.Mutex
	history []string
	// violations are invariant breaches; each is also in the history.
	violations []string
	seenViol   map[string]bool
	// live sandbox resources the harness created, ns/name -> uid, and each uid's gateway.
	live map[string]types.UID
	gwOf map[types.UID]int
	// allow holds, per resource, when each recreation of its gateway sandbox that the user's
	// actions or a state loss require was granted; an observed recreation uses the oldest.
	allow map[types.UID][]time.Time
	// pendingOnDelete are OnDelete sandboxes with a change waiting for the user's delete.
	pendingOnDelete map[string]bool
	orphans         map[types.UID]*orphan
	// deleting: Delete-policy resources the harness deleted; goneSince: when the checker
	// first saw one gone from the API.
	deleting  map[types.UID]int
	goneSince map[types.UID]time.Time
	lastID    map[types.UID]string
	lie       map[types.UID]time.Duration
	lieSince  map[types.UID]time.Time
	secrets   []string
	// active faults by gateway (step index -> step), to re-inject after clearing one or a
	// restart.
	active      []map[int]Step
	down        []bool
	disturbed   []time.Time
	restartedAt []time.Time
	mgrFaults   int
	mgrFaultMu  sync.Mutex
	mgrDisturb  time.Time
	outages     []outage
	executed    map[Kind]int
	lastFault   time.Time
	converge    time.Duration
	sinceFault  time.Duration
	crashes     int
	leaderLoss  int
	checkRounds int
	lieMax      time.Duration
	// quiet keeps the history off the test output (the checker's self-tests).
	quiet bool
}

func (h *harness) logf(format string, args ...any) {
	line := fmt.Sprintf("%9s ", time.Since(h.start).Round(time.Millisecond)) + fmt.Sprintf(format, args...)
	h.mu.Lock()
	h.history = append(h.history, line)
	quiet := h.quiet
	h.mu.Unlock()
	if !quiet {
		_, _ = fmt.Fprintln(GinkgoWriter, line)
	}
}

// violate records an invariant breach once per key.
func (h *harness) violate(key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.mu.Lock()
	if h.seenViol[key] {
		h.mu.Unlock()
		return
	}
	h.seenViol[key] = true
	h.violations = append(h.violations, fmt.Sprintf("%s: %s", time.Since(h.start).Round(time.Millisecond), msg))
	h.mu.Unlock()
	h.logf("VIOLATION %s", msg)
}

func runSoak(ctx context.Context, seed uint64, d time.Duration, skip []Kind) *report {
	// Skipped kinds are dropped after generation: every other step keeps its time and target.
	steps := slices.DeleteFunc(Generate(seed, d), func(s Step) bool { return slices.Contains(skip, s.Kind) })
	h := &harness{seed: seed, d: d, start: time.Now(), seenViol: map[string]bool{}, live: map[string]types.UID{},
		gwOf: map[types.UID]int{}, allow: map[types.UID][]time.Time{}, pendingOnDelete: map[string]bool{}, orphans: map[types.UID]*orphan{},
		deleting: map[types.UID]int{}, goneSince: map[types.UID]time.Time{}, lastID: map[types.UID]string{},
		lie: map[types.UID]time.Duration{}, lieSince: map[types.UID]time.Time{}, executed: map[Kind]int{}}
	var err error
	h.work, err = os.MkdirTemp("", fmt.Sprintf("openshell-soak-%d-", seed))
	Expect(err).NotTo(HaveOccurred())
	h.setup(ctx)

	runCtx, stopRun := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); h.checkLoop(runCtx) }()
	for _, m := range h.mgrs {
		wg.Add(1)
		go func() { defer wg.Done(); h.watchManager(runCtx, m) }()
	}
	h.start = time.Now()
	h.logf("seed %d: %d steps over %s (skipped kinds: %v)", seed, len(steps), d, skip)
	var faults sync.WaitGroup
	for i, s := range steps {
		if wait := time.Until(h.start.Add(s.At)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				stopRun()
				wg.Wait()
				return h.report(steps)
			}
		}
		h.mu.Lock()
		h.executed[s.Kind]++
		h.mu.Unlock()
		if s.Kind.IsFault() {
			faults.Add(1)
			go func() { defer faults.Done(); h.fault(ctx, i, s) }()
			continue
		}
		h.act(ctx, s)
	}
	sleep(ctx, time.Until(h.start.Add(d)))
	h.logf("schedule done; waiting for faults in progress to end")
	faults.Wait()
	h.quiesce(ctx)
	stopRun()
	wg.Wait()
	h.final(ctx)
	rep := h.report(steps)
	if len(rep.Violations) == 0 && os.Getenv("SOAK_KEEP") == "" {
		_ = os.RemoveAll(h.work)
	}
	return rep
}

func (h *harness) setup(ctx context.Context) {
	var err error
	h.env, err = devenv.StartAPIServer(ctx, devenv.Options{Root: root, AssetsDir: assets, WorkDir: h.work, Log: GinkgoWriter})
	Expect(err).NotTo(HaveOccurred())
	// A cleanup node, not a defer: it also runs when the spec is interrupted or times out.
	DeferCleanup(h.env.Stop)
	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	cfg := *h.env.Config
	cfg.QPS, cfg.Burst = 200, 400
	h.k8s, err = client.New(&cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	for _, ns := range append([]string{systemNS}, Namespaces...) {
		Expect(h.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}

	for _, name := range Gateways {
		s := &simProc{name: name}
		s.certs, err = gatewaysim.GenerateCertBundle()
		Expect(err).NotTo(HaveOccurred())
		dir := filepath.Join(h.work, "certs-"+name)
		Expect(s.certs.WriteDir(dir)).To(Succeed())
		s.addr, err = devenv.FreeLoopbackAddr()
		Expect(err).NotTo(HaveOccurred())
		s.admin, err = devenv.FreeLoopbackAddr()
		Expect(err).NotTo(HaveOccurred())
		s.p, err = h.env.StartProcess("gatewaysim-"+name, bins.Simulator, "--listen", s.addr, "--cert-dir", dir,
			"--admin-listen", s.admin, "--provisioning-delay", provisioningDelay.String(), "--deletion-delay", provisioningDelay.String(),
			"--policy-poll-interval", "500ms")
		Expect(err).NotTo(HaveOccurred())
		Expect(h.waitAdmin(ctx, s)).To(Succeed())
		s.client, err = gateway.FromCredentials(s.addr, s.certs.CACert, s.certs.ClientCert, s.certs.ClientKey)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = s.client.Close() })
		h.sims = append(h.sims, s)
		h.active = append(h.active, map[int]Step{})
		h.down = append(h.down, false)
		h.disturbed = append(h.disturbed, time.Time{})
		h.restartedAt = append(h.restartedAt, time.Time{})
		h.secrets = append(h.secrets, keyFragments(s.certs.ClientKey)...)
		Expect(h.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: name + "-tls"},
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{"ca.crt": s.certs.CACert, "tls.crt": s.certs.ClientCert, "tls.key": s.certs.ClientKey}})).To(Succeed())
		Expect(h.k8s.Create(ctx, &v1alpha1.GatewayConnection{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.GatewayConnectionSpec{
			Endpoint: s.addr, Timeout: &metav1.Duration{Duration: gatewayTimeout},
			TLS: v1alpha1.GatewayTLS{SecretRef: v1alpha1.NamespacedObjectReference{Namespace: systemNS, Name: name + "-tls"}},
		}})).To(Succeed())
	}

	for i := range 2 {
		m := &mgrProc{name: fmt.Sprintf("manager-%d", i+1)}
		m.metrics, err = devenv.FreeLoopbackAddr()
		Expect(err).NotTo(HaveOccurred())
		probe, err := devenv.FreeLoopbackAddr()
		Expect(err).NotTo(HaveOccurred())
		m.p, err = h.env.StartProcess(m.name, bins.Manager, "--kubeconfig", h.env.Kubeconfig, "--metrics-bind-address", m.metrics,
			"--health-probe-bind-address", probe, "--leader-elect", "--leader-election-namespace", systemNS,
			"--leader-election-lease-duration", leaseDuration.String(), "--leader-election-renew-deadline", "4s",
			"--leader-election-retry-period", "1s")
		Expect(err).NotTo(HaveOccurred())
		h.mgrs = append(h.mgrs, m)
	}

	for _, ns := range Namespaces {
		for gw := range Gateways {
			for i := range 2 {
				p := ProviderName(gw, i)
				value := fmt.Sprintf("sk-soak-%d-initial-%s-%s", h.seed, ns, p)
				h.secrets = append(h.secrets, value)
				Expect(h.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: SecretName(p)},
					Data: map[string][]byte{CredentialKey(p): []byte(value)}})).To(Succeed())
				Expect(h.k8s.Create(ctx, &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: p}, Spec: v1alpha1.ProviderSpec{
					GatewayRef: v1alpha1.GatewayReference{Name: Gateways[gw]}, Type: "openai",
					CredentialsSecretRef: v1alpha1.CredentialsSecretReference{Name: SecretName(p)},
					Config:               map[string]string{"SOAK_REGION": "r0"}, DeletionPolicy: v1alpha1.DeletionPolicyDelete,
				}})).To(Succeed())
			}
		}
		Expect(h.k8s.Create(ctx, &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: PolicyName}, Spec: policySpec(0)})).To(Succeed())
	}
	// The run starts from a converged base: both connections and every Provider Ready.
	Eventually(func() []string { return h.notReadyBase(ctx) }, 3*time.Minute, time.Second).Should(BeEmpty())
}

func (h *harness) notReadyBase(ctx context.Context) []string {
	var out []string
	var gcs v1alpha1.GatewayConnectionList
	if err := h.k8s.List(ctx, &gcs); err != nil {
		return []string{err.Error()}
	}
	for _, gc := range gcs.Items {
		if !meta.IsStatusConditionTrue(gc.Status.Conditions, v1alpha1.ConditionReady) {
			out = append(out, "GatewayConnection "+gc.Name)
		}
	}
	var ps v1alpha1.ProviderList
	if err := h.k8s.List(ctx, &ps); err != nil {
		return []string{err.Error()}
	}
	for _, p := range ps.Items {
		if !meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady) {
			out = append(out, "Provider "+p.Namespace+"/"+p.Name)
		}
	}
	return out
}

// policySpec is the policy of host generation gen: its network rule's host is the part that
// changes, which the gateway applies in place.
func policySpec(gen int) v1alpha1.SandboxPolicySpec {
	return v1alpha1.SandboxPolicySpec{NetworkPolicies: map[string]v1alpha1.NetworkPolicyRule{
		"api": {Endpoints: []v1alpha1.NetworkEndpoint{{Host: policyHost(gen), Port: 443}}, Binaries: []v1alpha1.NetworkBinary{{Path: "/usr/bin/curl"}}},
	}}
}

func policyHost(gen int) string { return fmt.Sprintf("api-%d.soak.example.com", gen) }

// keyFragments are substrings of a PEM private key's body that must never appear anywhere.
func keyFragments(pemKey []byte) []string {
	var out []string
	for _, line := range strings.Split(string(pemKey), "\n") {
		if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			out = append(out, line[:40])
		}
	}
	return out
}

func (h *harness) waitAdmin(ctx context.Context, s *simProc) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := h.calls(s); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("%s admin API not up: %w", s.name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// admin posts a JSON body to the simulator's admin API.
func (h *harness) admin(s *simProc, path string, body any) error {
	b, _ := json.Marshal(body)
	resp, err := http.Post("http://"+s.admin+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s", s.name, path, resp.Status)
	}
	return nil
}

func (h *harness) calls(s *simProc) (map[string]int, error) {
	resp, err := http.Get("http://" + s.admin + "/calls")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	out := map[string]int{}
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// leader returns the manager whose metrics say it leads, or nil.
func (h *harness) leader() *mgrProc {
	for _, m := range h.mgrs {
		if !m.p.Running() {
			continue
		}
		resp, err := http.Get("http://" + m.metrics + "/metrics")
		if err != nil {
			continue
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		_ = resp.Body.Close()
		for _, line := range strings.Split(buf.String(), "\n") {
			if strings.HasPrefix(line, "leader_election_master_status{") && strings.HasSuffix(line, " 1") {
				return m
			}
		}
	}
	return nil
}

// watchManager restarts a manager that exited without the harness making it exit: losing the
// lease on a loaded machine is recorded, anything else is a crash (a violation).
func (h *harness) watchManager(ctx context.Context, m *mgrProc) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.p.Done():
		}
		h.mu.Lock()
		expected := m.expect
		h.mu.Unlock()
		if expected {
			// The fault restarts it; wait for that.
			for !m.p.Running() && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		tail := logTail(m.p.LogPath(), 4096)
		if strings.Contains(tail, "leader election lost") {
			h.mu.Lock()
			h.leaderLoss++
			h.mgrDisturb = time.Now()
			h.mu.Unlock()
			h.logf("%s lost its lease on its own (%s) and exited; restarting it", m.name, m.p.ExitState())
		} else {
			h.mu.Lock()
			h.crashes++
			h.mu.Unlock()
			h.violate("crash-"+m.name+time.Now().String(), "%s exited on its own (%s); log tail:\n%s", m.name, m.p.ExitState(), tail)
		}
		if err := m.p.Restart(); err != nil {
			h.logf("restart %s: %v", m.name, err)
			return
		}
	}
}

func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	st, _ := f.Stat()
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(buf, off)
	return string(buf)
}

// edit applies mutate to the latest version of obj, retrying on conflicts (the user's side of
// the API conflicts).
func (h *harness) edit(ctx context.Context, obj client.Object, mutate func()) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, cancel := callCtx(ctx)
		defer cancel()
		if err := h.k8s.Get(c, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate()
		return h.k8s.Update(c, obj)
	})
}

func (h *harness) act(ctx context.Context, s Step) {
	err := h.doAct(ctx, s)
	if err != nil {
		h.logf("%s -> %v", s, err)
		return
	}
	h.logf("%s", s)
}

func (h *harness) doAct(ctx context.Context, s Step) error {
	key := s.NS + "/" + s.Name
	sb := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: s.NS, Name: s.Name}}
	switch s.Kind {
	case ActCreate:
		sb.Spec = v1alpha1.SandboxSpec{GatewayRef: v1alpha1.GatewayReference{Name: Gateways[s.GW]}, Image: "busybox",
			Environment: map[string]string{"SOAK_GEN": "0"}, Providers: s.Providers,
			UpdateStrategy: v1alpha1.UpdateStrategyRecreate, DeletionPolicy: v1alpha1.DeletionPolicyDelete}
		if s.OnDelete {
			sb.Spec.UpdateStrategy = v1alpha1.UpdateStrategyOnDelete
		}
		if s.Orphan {
			sb.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan
		}
		switch s.Policy {
		case PolicyRef:
			sb.Spec.PolicyRef = &v1alpha1.LocalObjectReference{Name: PolicyName}
		case PolicyInline:
			p := policySpec(0)
			sb.Spec.Policy = &p
		}
		c, cancel := callCtx(ctx)
		defer cancel()
		if err := h.k8s.Create(c, sb); err != nil {
			return err
		}
		h.mu.Lock()
		h.live[key], h.gwOf[sb.UID] = sb.UID, s.GW
		h.mu.Unlock()
	case ActEditInPlace:
		return h.edit(ctx, sb, func() {
			if s.Providers != nil {
				sb.Spec.Providers = s.Providers
				return
			}
			p := policySpec(s.Gen)
			sb.Spec.Policy = &p
		})
	case ActEditRecreate:
		return h.edit(ctx, sb, func() {
			// Granted before the write lands: the checker may see the new sandbox at once.
			h.mu.Lock()
			if sb.Spec.UpdateStrategy == v1alpha1.UpdateStrategyOnDelete {
				h.pendingOnDelete[key] = true
			} else {
				h.grant(sb.UID)
			}
			h.mu.Unlock()
			sb.Spec.Environment = map[string]string{"SOAK_GEN": fmt.Sprint(s.Gen)}
		})
	case ActApplyOnDelete:
		return h.applyOnDelete(ctx, s.NS, s.Name)
	case ActDelete:
		c, cancel := callCtx(ctx)
		defer cancel()
		if err := h.k8s.Get(c, client.ObjectKeyFromObject(sb), sb); err != nil {
			return err
		}
		h.mu.Lock()
		delete(h.live, key)
		delete(h.pendingOnDelete, key)
		if sb.Spec.DeletionPolicy == v1alpha1.DeletionPolicyOrphan {
			h.orphans[sb.UID] = &orphan{gw: h.gwOf[sb.UID], name: sb.Status.GatewayName, id: h.lastID[sb.UID], resourceNS: s.NS,
				uncertain: len(h.allow[sb.UID]) > 0 || h.lastID[sb.UID] == ""}
		} else {
			h.deleting[sb.UID] = h.gwOf[sb.UID]
		}
		h.mu.Unlock()
		return h.k8s.Delete(c, sb, client.Preconditions{UID: &sb.UID})
	case ActPolicyEdit:
		pol := &v1alpha1.SandboxPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: s.NS, Name: PolicyName}}
		return h.edit(ctx, pol, func() { pol.Spec = policySpec(s.Gen) })
	case ActProviderEdit:
		p := &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: s.NS, Name: s.Name}}
		return h.edit(ctx, p, func() { p.Spec.Config = map[string]string{"SOAK_REGION": fmt.Sprintf("r%d", s.Gen)} })
	case ActSecretRotate:
		h.mu.Lock()
		h.secrets = append(h.secrets, s.Value)
		h.mu.Unlock()
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.NS, Name: s.Name}}
		return h.edit(ctx, sec, func() { sec.Data = map[string][]byte{CredentialKey(s.Name): []byte(s.Value)} })
	case ActConflicts:
		h.conflicts(ctx, s.For)
	}
	return nil
}

// applyOnDelete is the user deleting the gateway sandbox of an OnDelete change (what the
// openshell CLI does); the operator then creates it with the new spec.
func (h *harness) applyOnDelete(ctx context.Context, ns, name string) error {
	key := ns + "/" + name
	h.mu.Lock()
	pending, uid := h.pendingOnDelete[key], h.live[key]
	gw, ok := h.gwOf[uid]
	h.mu.Unlock()
	if !pending || !ok {
		return fmt.Errorf("nothing pending")
	}
	sb := &v1alpha1.Sandbox{}
	c, cancel := callCtx(ctx)
	defer cancel()
	if err := h.k8s.Get(c, types.NamespacedName{Namespace: ns, Name: name}, sb); err != nil {
		return err
	}
	h.mu.Lock()
	h.grant(uid)
	h.mu.Unlock()
	if _, err := h.sims[gw].client.Sandboxes.Delete(c, sb.Status.GatewayName); err != nil {
		h.mu.Lock()
		h.allow[uid] = h.allow[uid][:len(h.allow[uid])-1]
		h.mu.Unlock()
		return err
	}
	h.mu.Lock()
	delete(h.pendingOnDelete, key)
	h.mu.Unlock()
	return nil
}

// conflicts edits labels of every live sandbox in a loop: each edit races the operator's
// finalizer and status writes.
func (h *harness) conflicts(ctx context.Context, d time.Duration) {
	h.mu.Lock()
	var keys []string
	for k := range h.live {
		keys = append(keys, k)
	}
	h.mu.Unlock()
	sort.Strings(keys)
	for n, stop := 0, time.Now().Add(d); time.Now().Before(stop); n++ {
		for _, k := range keys {
			ns, name, _ := strings.Cut(k, "/")
			sb := &v1alpha1.Sandbox{}
			c, cancel := callCtx(ctx)
			if h.k8s.Get(c, types.NamespacedName{Namespace: ns, Name: name}, sb) == nil {
				sb.Labels = map[string]string{"soak-touch": fmt.Sprint(n)}
				_ = h.k8s.Update(c, sb)
			}
			cancel()
		}
	}
}

// fault injects one fault and, for faults with a duration, ends it.
func (h *harness) fault(ctx context.Context, idx int, s Step) {
	defer func() {
		h.mu.Lock()
		h.lastFault = time.Now()
		h.mu.Unlock()
	}()
	sim := h.sims[s.GW]
	switch s.Kind {
	case FaultError, FaultLatency:
		h.setActive(s.GW, idx, &s)
		h.logf("%s", s)
		sleep(ctx, s.For)
		h.setActive(s.GW, idx, nil)
		h.logf("end of %s #%d on %s", s.Kind, idx, sim.name)
	case FaultOutage:
		before, _ := h.calls(sim)
		objects := h.objectsOn(s.GW)
		h.mu.Lock()
		mgrBefore := h.mgrFaults > 0 || time.Since(h.mgrDisturb) < calmAfterManager
		h.mu.Unlock()
		h.setActive(s.GW, idx, &s)
		h.logf("%s (%d objects on it)", s, objects)
		sleep(ctx, s.For)
		after, err := h.calls(sim)
		h.setActive(s.GW, idx, nil)
		h.mu.Lock()
		mgrDuring := mgrBefore || h.mgrFaults > 0 || time.Since(h.mgrDisturb) < s.For
		h.mu.Unlock()
		o := outage{gw: s.GW, window: s.For, bound: callBound(objects, s.For), managerFaulted: mgrDuring}
		var byMethod map[string]int
		if err == nil && before != nil {
			o.calls = max(total(after)-total(before), 0) // a restart in the window resets the counters
			byMethod = diff(after, before)
			// A manager restart during the window legitimately starts every object's backoff over.
			o.judged = !mgrDuring && !h.wasRestarted(s.GW, s.For)
			if o.judged && o.calls > o.bound {
				h.violate(fmt.Sprintf("outage-%d", idx), "%d gateway calls to %s during a %s outage with %d objects (bound %d): no backoff? %v",
					o.calls, sim.name, s.For, objects, o.bound, diff(after, before))
			}
		}
		h.mu.Lock()
		h.outages = append(h.outages, o)
		h.mu.Unlock()
		h.logf("end of outage #%d on %s: %d calls in %s (bound %d, judged %v): %v", idx, sim.name, o.calls, s.For, o.bound, o.judged, byMethod)
	case FaultStreamCut:
		resp, err := http.Post("http://"+sim.admin+"/streams/cut", "application/json", nil)
		if err != nil {
			h.logf("%s -> %v", s, err)
			return
		}
		var out map[string]int
		_ = json.NewDecoder(resp.Body).Decode(&out)
		_ = resp.Body.Close()
		h.markDisturbed(s.GW)
		h.logf("%s: cut %d streams", s, out["cut"])
	case FaultRestart:
		h.restartGateway(ctx, s)
	case FaultManagerKill, FaultLeaderPause:
		h.managerFault(ctx, s)
	}
}

// callBound is the most gateway calls an outage of window w may cost with n objects on the
// gateway: per object, the exponential backoff from 500 ms allows about log2(w/500ms)+1
// attempts (a few calls each), plus the connection's probes and the observer's relists.
// A reconcile loop without backoff makes that many calls per object every second.
func callBound(n int, w time.Duration) int {
	attempts := 2
	for d := 500 * time.Millisecond; d < w; d *= 2 {
		attempts++
	}
	return 2*n*attempts + 4*int(w/time.Second) + 20
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func diff(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func (h *harness) objectsOn(gw int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 1 + 2*len(Namespaces) // the connection and the providers
	for _, uid := range h.live {
		if h.gwOf[uid] == gw {
			n++
		}
	}
	return n
}

// setActive adds (s != nil) or removes an injected fault on a gateway and re-applies the set:
// the admin API only clears everything at once.
func (h *harness) setActive(gw, idx int, s *Step) {
	h.mu.Lock()
	if s != nil {
		h.active[gw][idx] = *s
	} else {
		delete(h.active[gw], idx)
	}
	h.disturbed[gw] = time.Now()
	h.mu.Unlock()
	h.applyFaults(gw)
}

func (h *harness) applyFaults(gw int) {
	sim := h.sims[gw]
	h.mu.Lock()
	down := h.down[gw]
	var idxs []int
	for i := range h.active[gw] {
		idxs = append(idxs, i)
	}
	slices.Sort(idxs)
	steps := make([]Step, 0, len(idxs))
	for _, i := range idxs {
		steps = append(steps, h.active[gw][i])
	}
	h.mu.Unlock()
	if down {
		return // re-applied when it is back
	}
	if err := h.admin(sim, "/faults/clear", struct{}{}); err != nil {
		h.logf("clear faults on %s: %v", sim.name, err)
	}
	for _, s := range steps {
		var err error
		switch s.Kind {
		case FaultError:
			err = h.admin(sim, "/faults/error", map[string]any{"method": s.Method, "code": s.Code, "message": "soak: injected " + s.Code, "times": s.Times})
		case FaultLatency:
			err = h.admin(sim, "/faults/latency", map[string]any{"method": s.Method, "latency": s.Latency.String()})
		case FaultOutage:
			err = h.admin(sim, "/faults/error", map[string]any{"method": "*", "code": "Unavailable", "message": "soak: gateway outage", "times": -1})
		}
		if err != nil {
			h.logf("inject on %s: %v", sim.name, err)
		}
	}
}

func (h *harness) markDisturbed(gw int) {
	h.mu.Lock()
	h.disturbed[gw] = time.Now()
	h.mu.Unlock()
}

// wasRestarted reports whether the gateway was down or came back empty within the last window.
func (h *harness) wasRestarted(gw int, within time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down[gw] || time.Since(h.restartedAt[gw]) < within+time.Second
}

// restartGateway kills the simulator (state loss) and starts it empty on the same address with
// the same certificates. Every sandbox on it may now be recreated, and its orphans are gone.
func (h *harness) restartGateway(ctx context.Context, s Step) {
	sim := h.sims[s.GW]
	h.mu.Lock()
	for _, uid := range h.live {
		if h.gwOf[uid] == s.GW {
			h.grant(uid)
		}
	}
	for _, o := range h.orphans {
		if o.gw == s.GW {
			o.lost = true
		}
	}
	for key, uid := range h.live {
		if h.gwOf[uid] == s.GW {
			delete(h.pendingOnDelete, key)
		}
	}
	h.down[s.GW] = true
	h.disturbed[s.GW] = time.Now()
	h.mu.Unlock()
	sim.p.Kill()
	h.logf("%s: killed (%s)", s, sim.p.ExitState())
	sleep(ctx, s.For)
	if err := sim.p.Restart(); err != nil {
		h.violate("restart-"+sim.name, "restart %s: %v", sim.name, err)
		return
	}
	if err := h.waitAdmin(ctx, sim); err != nil {
		h.violate("restart-"+sim.name, "%v", err)
		return
	}
	h.mu.Lock()
	h.down[s.GW] = false
	h.disturbed[s.GW] = time.Now()
	h.restartedAt[s.GW] = time.Now()
	h.mu.Unlock()
	h.applyFaults(s.GW)
	h.logf("%s is back, empty", sim.name)
}

func (h *harness) managerFault(ctx context.Context, s Step) {
	// One manager fault at a time: a kill arriving while a pause of the same process is in
	// progress would race its restart. A later fault waits (and is logged when it runs).
	h.mgrFaultMu.Lock()
	defer h.mgrFaultMu.Unlock()
	h.mu.Lock()
	h.mgrFaults++
	h.mgrDisturb = time.Now()
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.mgrFaults--
		h.mgrDisturb = time.Now()
		h.mu.Unlock()
	}()
	lead := h.leader()
	target := lead
	if s.Manager == "follower" || lead == nil {
		for _, m := range h.mgrs {
			if m != lead && m.p.Running() {
				target = m
				break
			}
		}
	}
	if target == nil {
		h.logf("%s -> no running manager to target", s)
		return
	}
	role := "follower"
	if target == lead {
		role = "leader"
	}
	h.mu.Lock()
	target.expect = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		target.expect = false
		h.mu.Unlock()
	}()
	switch s.Kind {
	case FaultManagerKill:
		target.p.Kill()
		h.logf("%s: killed %s (%s)", s, target.name, role)
		sleep(ctx, s.For)
	case FaultLeaderPause:
		if err := target.p.Signal(syscall.SIGSTOP); err != nil {
			h.logf("%s -> %v", s, err)
			return
		}
		h.logf("%s: paused %s (%s)", s, target.name, role)
		sleep(ctx, s.For)
		_ = target.p.Signal(syscall.SIGCONT)
		select {
		case <-target.p.Done():
			h.logf("%s resumed, found its lease lost and exited (%s)", target.name, target.p.ExitState())
		case <-time.After(15 * time.Second):
			h.logf("%s resumed and kept running", target.name)
			return
		}
	}
	if target.p.Running() {
		return
	}
	if err := target.p.Restart(); err != nil {
		h.violate("restart-"+target.name, "restart %s: %v", target.name, err)
		return
	}
	h.logf("%s restarted", target.name)
}

// quiesce ends every fault and applies the OnDelete changes still waiting for the user.
func (h *harness) quiesce(ctx context.Context) {
	for gw := range h.sims {
		h.mu.Lock()
		h.active[gw] = map[int]Step{}
		h.mu.Unlock()
		h.applyFaults(gw)
	}
	h.mu.Lock()
	var pending []string
	for k := range h.pendingOnDelete {
		pending = append(pending, k)
	}
	h.mu.Unlock()
	sort.Strings(pending)
	for _, k := range pending {
		ns, name, _ := strings.Cut(k, "/")
		// The operator must first report RecreatePending with the new generation; retry the
		// delete until the gateway accepts it.
		var err error
		for range 10 {
			if err = h.applyOnDelete(ctx, ns, name); err == nil {
				break
			}
			sleep(ctx, time.Second)
		}
		h.logf("final %s %s -> %v", ActApplyOnDelete, k, err)
	}
	h.logf("quiet: no faults from now on")
}

// sleep waits d or until ctx ends (an interrupted soak stops at once).
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// grant allows one recreation of uid's gateway sandbox; h.mu is held.
func (h *harness) grant(uid types.UID) { h.allow[uid] = append(h.allow[uid], time.Now()) }
