// Package devenv runs the operator the way a user would, as real processes: kube-apiserver and
// etcd (through envtest), the gateway simulator binary and the manager binary, driven with a real
// kubectl. The demo (cmd/demo) and the e2e suite (test/e2e) share it.
package devenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// Options configures Start.
type Options struct {
	// Root is the repository root (holds config/ and hack/).
	Root string
	// ManagerBin and SimulatorBin are the built binaries.
	ManagerBin, SimulatorBin string
	// Kubectl is the kubectl binary path.
	Kubectl string
	// AssetsDir holds kube-apiserver and etcd.
	AssetsDir string
	// WorkDir receives the kubeconfig, certificates and process logs; created if missing.
	WorkDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// ManagerArgs and SimulatorArgs are appended to the processes' command lines.
	ManagerArgs, SimulatorArgs []string
}

// Env is a running environment. Stop tears it down.
type Env struct {
	opts Options
	// Kubeconfig is the path of an admin kubeconfig for the apiserver.
	Kubeconfig string
	// ManagerKubeconfig is the manager's kubeconfig: its ServiceAccount's token, with the
	// permissions config/rbac grants.
	ManagerKubeconfig string
	// CertDir holds the simulator's ca.crt, server.*, tls.crt and tls.key.
	CertDir string
	// GatewayAddr and AdminAddr are the simulator's gRPC and admin addresses.
	GatewayAddr, AdminAddr string
	// MetricsAddr and ProbeAddr are the manager's loopback endpoints.
	MetricsAddr, ProbeAddr string
	// Config is the admin REST config of the apiserver.
	Config *rest.Config
	// ManagerPID is the manager's process id.
	ManagerPID int

	testEnv   *envtest.Environment
	mu        sync.Mutex
	procs     []*exec.Cmd
	processes []*Process
}

// operatorNamespace is where the operator runs, its client Secret lives and config/rbac's
// namespaced objects go.
const operatorNamespace = "openshell-system"

var listenLine = regexp.MustCompile(`gatewaysim listening grpc=(\S+) admin=(\S+)`)

func (e *Env) logf(format string, args ...any) {
	if e.opts.Log != nil {
		_, _ = fmt.Fprintf(e.opts.Log, format+"\n", args...)
	}
}

// Start brings up apiserver+etcd, the simulator with fresh certs, the client Secret, the CRDs
// and the manager. On error everything already started is stopped.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	e, err := StartAPIServer(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()

	e.logf("starting gateway simulator with fresh mTLS certificates")
	if err := e.startSimulator(ctx); err != nil {
		return nil, err
	}

	e.logf("storing the client certificate in Secret openshell-system/openshell-client-tls")
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if err := e.storeClientSecret(ctx, cs); err != nil {
		return nil, err
	}

	// The manager runs as its ServiceAccount with exactly config/rbac's roles, never as an
	// admin: a missing permission fails the demo and e2e instead of hiding.
	e.logf("installing config/rbac and running the operator as its ServiceAccount")
	saCfg, err := InstallOperatorRBAC(ctx, e.Config, opts.Root, operatorNamespace)
	if err != nil {
		return nil, err
	}
	e.ManagerKubeconfig = filepath.Join(opts.WorkDir, "manager.kubeconfig")
	if err := WriteKubeconfig(saCfg, e.ManagerKubeconfig); err != nil {
		return nil, err
	}

	if err := e.startManager(); err != nil {
		return nil, err
	}
	return e, nil
}

// StartAPIServer brings up apiserver+etcd with the CRDs and writes an admin kubeconfig; no
// simulator, no manager (callers that drive processes themselves start those with
// StartProcess). On error everything already started is stopped.
func StartAPIServer(ctx context.Context, opts Options) (_ *Env, err error) {
	if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	e := &Env{opts: opts, CertDir: filepath.Join(opts.WorkDir, "certs")}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()

	e.logf("starting kube-apiserver and etcd (%s)", opts.AssetsDir)
	e.testEnv = &envtest.Environment{
		BinaryAssetsDirectory: opts.AssetsDir,
		CRDDirectoryPaths:     []string{filepath.Join(opts.Root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := e.testEnv.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	user, err := e.testEnv.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		return nil, fmt.Errorf("add admin user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("render kubeconfig: %w", err)
	}
	e.Kubeconfig = filepath.Join(opts.WorkDir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, kc, 0o600); err != nil {
		return nil, fmt.Errorf("write kubeconfig: %w", err)
	}
	e.Config = user.Config()
	return e, nil
}

func (e *Env) startSimulator(ctx context.Context) error {
	cmd := exec.Command(e.opts.SimulatorBin, append([]string{"--listen", "127.0.0.1:0", "--generate-certs", e.CertDir,
		"--admin-listen", "127.0.0.1:0"}, e.opts.SimulatorArgs...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("simulator stdout: %w", err)
	}
	logFile, err := os.Create(filepath.Join(e.opts.WorkDir, "gatewaysim.log"))
	if err != nil {
		return fmt.Errorf("simulator log: %w", err)
	}
	cmd.Stderr = logFile
	if err := e.spawn(cmd); err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				lines <- sc.Text()
			}
			_, _ = fmt.Fprintln(logFile, sc.Text())
		}
	}()
	select {
	case l := <-lines:
		m := listenLine.FindStringSubmatch(l)
		e.GatewayAddr, e.AdminAddr = m[1], m[2]
		e.logf("gateway simulator listening grpc=%s admin=%s", e.GatewayAddr, e.AdminAddr)
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("simulator did not report its listen address within 30s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// clientCredentials reads the simulator's CA and the client certificate and key from CertDir,
// keyed as in a kubernetes.io/tls Secret with its CA (ca.crt, tls.crt, tls.key).
func (e *Env) clientCredentials() (map[string][]byte, error) {
	data := map[string][]byte{}
	for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
		b, err := os.ReadFile(filepath.Join(e.CertDir, k))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		data[k] = b
	}
	return data, nil
}

// GatewayClient is a client of the simulator over mTLS with the operator's client
// certificate, for tests and benchmarks that look at the gateway themselves. Close it.
func (e *Env) GatewayClient() (*gateway.Client, error) {
	creds, err := e.clientCredentials()
	if err != nil {
		return nil, err
	}
	return gateway.FromCredentials(e.GatewayAddr, creds["ca.crt"], creds["tls.crt"], creds["tls.key"], gateway.WithServerName("localhost"))
}

func (e *Env) storeClientSecret(ctx context.Context, cs kubernetes.Interface) error {
	data, err := e.clientCredentials()
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "openshell-system"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace openshell-system: %w", err)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "openshell-client-tls", Namespace: "openshell-system"},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	if _, err := cs.CoreV1().Secrets("openshell-system").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create client secret: %w", err)
	}
	return nil
}

func (e *Env) startManager() error {
	var err error
	if e.MetricsAddr, err = FreeLoopbackAddr(); err != nil {
		return err
	}
	if e.ProbeAddr, err = FreeLoopbackAddr(); err != nil {
		return err
	}
	logPath := filepath.Join(e.opts.WorkDir, "manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("manager log: %w", err)
	}
	cmd := exec.Command(e.opts.ManagerBin, append([]string{"--kubeconfig", e.ManagerKubeconfig,
		"--metrics-bind-address", e.MetricsAddr, "--health-probe-bind-address", e.ProbeAddr}, e.opts.ManagerArgs...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+operatorNamespace)
	e.logf("starting the operator (metrics http://%s/metrics, probes http://%s/readyz, log %s)", e.MetricsAddr, e.ProbeAddr, logPath)
	if err := e.spawn(cmd); err != nil {
		return fmt.Errorf("start manager: %w", err)
	}
	e.ManagerPID = cmd.Process.Pid
	return nil
}

func (e *Env) spawn(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	e.mu.Lock()
	e.procs = append(e.procs, cmd)
	e.mu.Unlock()
	return nil
}

// Kubectl runs kubectl against the environment and returns its combined output.
func (e *Env) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.opts.Kubectl, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// ApplySamples applies config/samples with kubectl, pointing the default GatewayConnection at
// the simulator's actual address.
func (e *Env) ApplySamples(ctx context.Context) error {
	dir := filepath.Join(e.opts.Root, "config", "samples")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read samples: %w", err)
	}
	var parts []string
	for _, ent := range entries {
		name := ent.Name()
		if !strings.HasSuffix(name, ".yaml") || name == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("read sample %s: %w", name, err)
		}
		parts = append(parts, string(b))
	}
	manifest := PatchEndpoint(strings.Join(parts, "\n---\n"), e.GatewayAddr)
	path := filepath.Join(e.opts.WorkDir, "samples.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		return fmt.Errorf("write samples: %w", err)
	}
	// The namespace must exist before namespaced objects; apply it first.
	if _, err := e.Kubectl(ctx, "apply", "-f", filepath.Join(dir, "namespace.yaml")); err != nil {
		return err
	}
	out, err := e.Kubectl(ctx, "apply", "-f", path)
	e.logf("%s", strings.TrimSpace(out))
	return err
}

var endpointLine = regexp.MustCompile(`(?m)^(\s*endpoint:\s*)127\.0\.0\.1:8443\s*$`)

// PatchEndpoint replaces the samples' placeholder gateway endpoint with addr.
func PatchEndpoint(manifest, addr string) string {
	return endpointLine.ReplaceAllString(manifest, "${1}"+addr)
}

// FreeLoopbackAddr returns a currently free 127.0.0.1 port as host:port.
func FreeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// Stop kills the child processes, stops envtest and leaves WorkDir to the caller.
func (e *Env) Stop() {
	e.mu.Lock()
	procs, processes := e.procs, e.processes
	e.procs, e.processes = nil, nil
	e.mu.Unlock()
	for i := len(processes) - 1; i >= 0; i-- {
		processes[i].Stop()
	}
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = p.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	if e.testEnv != nil {
		if err := e.testEnv.Stop(); err != nil {
			e.logf("stopping envtest: %v", err)
		}
		e.testEnv = nil
	}
}
