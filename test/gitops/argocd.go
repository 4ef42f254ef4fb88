// Package gitops runs the Argo CD health checks in config/argocd the way Argo CD runs them and
// renders the argocd-cm snippet from them. Its tests prove the checks against status objects
// built from the v1alpha1 Go types and keep config/argocd free of drift.
package gitops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Health statuses Argo CD accepts from a health script (gitops-engine's HealthStatusCode).
const (
	HealthHealthy     = "Healthy"
	HealthProgressing = "Progressing"
	HealthDegraded    = "Degraded"
	HealthSuspended   = "Suspended"
	HealthMissing     = "Missing"
	HealthUnknown     = "Unknown"
)

// Group is the API group the health checks are for.
const Group = "openshell.dev"

// HealthScriptFile is the name of a health check in Argo CD's resource_customizations layout.
const HealthScriptFile = "health.lua"

// scriptTimeout is the deadline Argo CD gives one health script run.
const scriptTimeout = time.Second

// invalidHealthStatus is Argo CD's message when a script returns a status it does not know.
const invalidHealthStatus = "Lua returned an invalid health status"

// HealthStatus is what a health script returns: Argo CD's health.HealthStatus.
type HealthStatus struct {
	// Status is one of Healthy, Progressing, Degraded, Suspended, Missing or Unknown.
	Status string `json:"status"`
	// Message is shown next to the status in the Argo CD UI.
	Message string `json:"message,omitempty"`
}

// ExecuteHealthLua runs a health script as the Argo CD application controller runs one from
// argocd-cm: obj is the global table obj, only the package, base and table libraries are open
// (resource.customizations.useOpenLibs is off by default, so string, math, io and os are not),
// the run has a one-second deadline, and the returned table is read as {status, message}. A
// status Argo CD does not know becomes Unknown, as in Argo CD.
func ExecuteHealthLua(script string, obj map[string]any) (HealthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true},
			lua.LString(lib.name)); err != nil {
			return HealthStatus{}, fmt.Errorf("opening lua library %q: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return HealthStatus{}, fmt.Errorf("running health script: %w", err)
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return HealthStatus{}, fmt.Errorf("expect table output from lua script, not %s", l.Get(-1).Type())
	}
	hs, err := fromLua(ret)
	if err != nil {
		return HealthStatus{}, err
	}
	switch hs.Status {
	case HealthHealthy, HealthProgressing, HealthDegraded, HealthSuspended, HealthMissing, HealthUnknown:
		return hs, nil
	}
	return HealthStatus{Status: HealthUnknown, Message: invalidHealthStatus}, nil
}

// toLua converts a decoded Kubernetes object to Lua values the way Argo CD does: maps become
// tables with string keys, slices become arrays, every number becomes a Lua number, and
// anything else (nil included) becomes nil.
func toLua(l *lua.LState, v any) lua.LValue {
	switch t := v.(type) {
	case bool:
		return lua.LBool(t)
	case string:
		return lua.LString(t)
	case json.Number:
		return lua.LString(t)
	case float64:
		return lua.LNumber(t)
	case int64:
		return lua.LNumber(t)
	case int32:
		return lua.LNumber(t)
	case int:
		return lua.LNumber(t)
	case []any:
		arr := l.CreateTable(len(t), 0)
		for _, item := range t {
			arr.Append(toLua(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(t))
		for k, item := range t {
			tbl.RawSetH(lua.LString(k), toLua(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// fromLua reads the table a health script returned; Argo CD round-trips it through JSON into
// a HealthStatus, so status and message must be strings when set.
func fromLua(t *lua.LTable) (HealthStatus, error) {
	var hs HealthStatus
	for key, dst := range map[string]*string{"status": &hs.Status, "message": &hs.Message} {
		switch v := t.RawGetString(key).(type) {
		case *lua.LNilType:
		case lua.LString:
			*dst = string(v)
		default:
			return HealthStatus{}, fmt.Errorf("health script returned %s of type %s, want a string", key, v.Type())
		}
	}
	return hs, nil
}

// Kinds lists the kinds with a health check under dir (config/argocd): the directories
// <dir>/openshell.dev/<Kind> that hold a health.lua, sorted.
func Kinds(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, Group, "*", HealthScriptFile))
	if err != nil {
		return nil, fmt.Errorf("listing health checks: %w", err)
	}
	kinds := make([]string, 0, len(matches))
	for _, m := range matches {
		kinds = append(kinds, filepath.Base(filepath.Dir(m)))
	}
	sort.Strings(kinds)
	return kinds, nil
}

// HealthScript reads the health check of kind from dir (config/argocd).
func HealthScript(dir, kind string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, Group, kind, HealthScriptFile))
	if err != nil {
		return "", fmt.Errorf("reading health check of %s: %w", kind, err)
	}
	return string(b), nil
}

// ConfigMapKey is the argocd-cm key of the health check of kind.
func ConfigMapKey(kind string) string {
	return "resource.customizations.health." + Group + "_" + kind
}

// configMapHeader starts the rendered argocd-cm snippet.
const configMapHeader = `# Argo CD health checks for the openshell.dev kinds. Merge these keys into the argocd-cm
# ConfigMap of your Argo CD installation (see docs/gitops.md).
#
# Generated from config/argocd/openshell.dev/<Kind>/health.lua; do not edit. Regenerate with:
#   go test ./test/gitops -run TestGeneratedFiles -update
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
`

// RenderConfigMap renders the argocd-cm snippet holding every health check under dir
// (config/argocd), one literal block per kind in name order.
func RenderConfigMap(dir string) ([]byte, error) {
	kinds, err := Kinds(dir)
	if err != nil {
		return nil, err
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("no %s under %s", HealthScriptFile, filepath.Join(dir, Group))
	}
	var b bytes.Buffer
	b.WriteString(configMapHeader)
	for _, kind := range kinds {
		script, err := HealthScript(dir, kind)
		if err != nil {
			return nil, err
		}
		if err := checkBlockScalar(script); err != nil {
			return nil, fmt.Errorf("health check of %s: %w", kind, err)
		}
		fmt.Fprintf(&b, "  %s: |\n", ConfigMapKey(kind))
		for line := range strings.Lines(script) {
			if line == "\n" {
				b.WriteString(line)
				continue
			}
			b.WriteString("    " + line)
		}
	}
	return b.Bytes(), nil
}

// checkBlockScalar refuses scripts a YAML literal block ("|") would not reproduce exactly.
func checkBlockScalar(script string) error {
	switch {
	case !strings.HasSuffix(script, "\n") || strings.HasSuffix(script, "\n\n"):
		return errors.New("must end with exactly one newline")
	case strings.HasPrefix(script, " ") || strings.HasPrefix(script, "\n"):
		return errors.New("must not start with a space or an empty line")
	case strings.Contains(script, "\t") || strings.Contains(script, "\r"):
		return errors.New("must not contain tabs or carriage returns")
	}
	for line := range strings.Lines(script) {
		if strings.HasSuffix(strings.TrimSuffix(line, "\n"), " ") {
			return fmt.Errorf("trailing whitespace in %q", strings.TrimSpace(line))
		}
	}
	return nil
}
