package gatewaysim

import (
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// TestGeneratedNames: an empty name becomes two words joined by "-" (petname(2, "-")),
// falling back to six random lowercase letters when taken (semantics §1.1).
func TestGeneratedNames(t *testing.T) {
	h := start(t, Options{})
	re := regexp.MustCompile(`^([a-z]+-[a-z]+|[a-z]{6})$`)
	seen := map[string]bool{}
	for i := 0; i < 40; i++ {
		name := h.sandbox(t, "", nil).GetMetadata().GetName()
		if !re.MatchString(name) {
			t.Fatalf("generated name %q is neither two words nor six letters", name)
		}
		if seen[name] {
			t.Fatalf("generated name %q twice", name)
		}
		seen[name] = true
	}
}

func phaseOf(t *testing.T, h *harness, name string) (*openshellv1.Sandbox, openshellv1.SandboxPhase) {
	t.Helper()
	resp, err := h.rpc.GetSandbox(tctx(t), &openshellv1.GetSandboxRequest{Name: name})
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return resp.GetSandbox(), resp.GetSandbox().GetStatus().GetPhase()
}

// TestPhaseFromDriverCondition: a transient Ready=False reason stays PROVISIONING, any other
// reason is ERROR, and ERROR is not sticky (semantics §1.2).
func TestPhaseFromDriverCondition(t *testing.T) {
	// The supervisor never connects within the test, so only the driver decides.
	h := start(t, Options{ProvisioningDelay: time.Hour})
	h.sandbox(t, "a", nil)
	const (
		prov  = openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING
		ready = openshellv1.SandboxPhase_SANDBOX_PHASE_READY
		errP  = openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR
	)
	rv := uint64(1)
	for _, step := range []struct {
		status, reason string
		want           openshellv1.SandboxPhase
	}{
		{"False", "containerstarting", prov}, // case-insensitive
		{"False", "InspectFailed", prov},
		{"False", "Unschedulable", errP},
		{"False", "Starting", prov},
		{"False", "ImagePullBackOff", errP},
		{"True", "", ready},
		{"Unknown", "", prov},
	} {
		code, out := h.post(t, "/sandboxes/a/driver-condition", `{"status":"`+step.status+`","reason":"`+step.reason+`","message":"m"}`)
		if code != http.StatusNoContent {
			t.Fatalf("driver-condition: %d %q", code, out)
		}
		sb, got := phaseOf(t, h, "a")
		if got != step.want {
			t.Fatalf("Ready=%s reason %q: phase %v, want %v", step.status, step.reason, got, step.want)
		}
		if c := sb.GetStatus().GetConditions(); len(c) != 1 || c[0].GetReason() != step.reason || c[0].GetStatus() != step.status {
			t.Fatalf("conditions %v, want the driver's", c)
		}
		if sb.GetMetadata().GetResourceVersion() <= rv {
			t.Fatalf("a driver event bumps the resource version: %d after %d", sb.GetMetadata().GetResourceVersion(), rv)
		}
		rv = sb.GetMetadata().GetResourceVersion()
	}
	if code, _ := h.post(t, "/sandboxes/missing/driver-condition", `{"status":"True"}`); code != http.StatusNotFound {
		t.Fatalf("unknown sandbox: %d", code)
	}
}

// TestSupervisorDisconnect: a disconnect takes READY back to PROVISIONING with
// DependenciesNotReady; a reconnect promotes it again; ERROR is left alone (semantics §1.2).
func TestSupervisorDisconnect(t *testing.T) {
	h := start(t, Options{})
	h.sandbox(t, "a", nil)
	eventually(t, "READY", func() bool {
		_, p := phaseOf(t, h, "a")
		return p == openshellv1.SandboxPhase_SANDBOX_PHASE_READY
	})
	if code, out := h.post(t, "/sandboxes/a/supervisor", `{"connected":false}`); code != http.StatusNoContent {
		t.Fatalf("disconnect: %d %q", code, out)
	}
	sb, p := phaseOf(t, h, "a")
	if p != openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING {
		t.Fatalf("after disconnect: %v", p)
	}
	if c := sb.GetStatus().GetConditions(); len(c) != 1 || c[0].GetStatus() != "False" || c[0].GetReason() != "DependenciesNotReady" {
		t.Fatalf("after disconnect conditions %v", c)
	}
	// A driver event while disconnected does not bring READY back.
	if err := h.sim.DriverCondition("a", "False", "Starting", "restarting"); err != nil {
		t.Fatal(err)
	}
	if _, p := phaseOf(t, h, "a"); p != openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING {
		t.Fatalf("driver event while disconnected: %v", p)
	}
	if err := h.sim.SetSupervisorConnected("a", true); err != nil {
		t.Fatal(err)
	}
	if sb, p := phaseOf(t, h, "a"); p != openshellv1.SandboxPhase_SANDBOX_PHASE_READY || sb.GetStatus().GetConditions()[0].GetReason() != readyReason {
		t.Fatalf("after reconnect: %v %v", p, sb.GetStatus().GetConditions())
	}
	// A connected supervisor promotes a transient driver state straight back to READY.
	if err := h.sim.DriverCondition("a", "False", "Starting", "restarting"); err != nil {
		t.Fatal(err)
	}
	if _, p := phaseOf(t, h, "a"); p != openshellv1.SandboxPhase_SANDBOX_PHASE_READY {
		t.Fatalf("transient event with the supervisor connected: %v", p)
	}
	// ERROR is left alone by the supervisor session.
	if err := h.sim.DriverCondition("a", "False", "Unschedulable", "no nodes"); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.SetSupervisorConnected("a", false); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.SetSupervisorConnected("a", true); err != nil {
		t.Fatal(err)
	}
	if _, p := phaseOf(t, h, "a"); p != openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR {
		t.Fatalf("ERROR after a reconnect: %v", p)
	}
}

// TestListOrderIsCreationOrder: sandboxes list by creation time first, then name; providers
// by their (client-supplied) created_at_ms, then name (semantics §1.3, §3.2).
func TestListOrderIsCreationOrder(t *testing.T) {
	h := start(t, Options{})
	c := tctx(t)
	var last int64
	for _, name := range []string{"zeta", "alpha", "mid"} {
		// Wait for the clock to move on so each sandbox has its own creation millisecond.
		eventually(t, "a new millisecond", func() bool { return time.Now().UnixMilli() > last })
		last = h.sandbox(t, name, nil).GetMetadata().GetCreatedAtMs()
	}
	list, err := h.rpc.ListSandboxes(c, &openshellv1.ListSandboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sb := range list.GetSandboxes() {
		got = append(got, sb.GetMetadata().GetName())
	}
	if want := []string{"zeta", "alpha", "mid"}; !slices.Equal(got, want) {
		t.Fatalf("sandboxes listed %v, want creation order %v", got, want)
	}
	page, err := h.rpc.ListSandboxes(c, &openshellv1.ListSandboxesRequest{Limit: 1, Offset: 1})
	if err != nil || len(page.GetSandboxes()) != 1 || page.GetSandboxes()[0].GetMetadata().GetName() != "alpha" {
		t.Fatalf("page 2 of size 1: %v %v", page.GetSandboxes(), err)
	}

	for _, p := range []struct {
		name    string
		created int64
	}{{"p-late", 30}, {"p-early", 10}, {"b-same", 20}, {"a-same", 20}} {
		_, err := h.rpc.CreateProvider(c, &openshellv1.CreateProviderRequest{Provider: &datamodelv1.Provider{
			Metadata: &datamodelv1.ObjectMeta{Name: p.name, CreatedAtMs: p.created}, Type: "generic", Credentials: map[string]string{"K": "v"},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	plist, err := h.rpc.ListProviders(c, &openshellv1.ListProvidersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, p := range plist.GetProviders() {
		got = append(got, p.GetMetadata().GetName())
	}
	if want := []string{"p-early", "a-same", "b-same", "p-late"}; !slices.Equal(got, want) {
		t.Fatalf("providers listed %v, want %v", got, want)
	}
}

// TestForcePhasePins: every forced phase but READY is pinned against the simulated driver
// and supervisor; forcing READY releases the pin and counts as a connected supervisor.
func TestForcePhasePins(t *testing.T) {
	h := start(t, Options{ProvisioningDelay: time.Hour})
	id := h.sandbox(t, "a", nil).GetMetadata().GetId()
	if !h.sim.ForcePhase("a", openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING) {
		t.Fatal("sandbox exists")
	}
	h.sim.driverReady("a", id) // the provisioning timer firing
	if _, p := phaseOf(t, h, "a"); p != openshellv1.SandboxPhase_SANDBOX_PHASE_PROVISIONING {
		t.Fatalf("a pinned PROVISIONING is not promoted by the supervisor: %v", p)
	}
	if err := h.sim.SetSupervisorConnected("a", false); err != nil {
		t.Fatal(err)
	}
	h.sim.ForcePhase("a", openshellv1.SandboxPhase_SANDBOX_PHASE_READY)
	if err := h.sim.DriverCondition("a", "False", "Starting", "restart"); err != nil {
		t.Fatal(err)
	}
	if _, p := phaseOf(t, h, "a"); p != openshellv1.SandboxPhase_SANDBOX_PHASE_READY {
		t.Fatalf("after a forced READY the supervisor counts as connected: %v", p)
	}
	if h.sim.ForcePhase("missing", openshellv1.SandboxPhase_SANDBOX_PHASE_ERROR) {
		t.Fatal("missing sandbox")
	}
}
