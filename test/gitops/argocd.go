// Package gitops runs the Argo CD health checks in config/argocd the way Argo CD runs them, and
// generates them and the argocd-cm snippet from their sources in config/argocd/src (the part
// every kind shares, written once, and each kind's own rules). Its tests prove the checks
// against status objects built from the v1alpha1 Go types and keep config/argocd free of drift.
package gitops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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

// The sources of the health checks. Argo CD loads one self-contained script per kind, so the
// rules every kind shares cannot be a library the scripts load: they are written once in
// src/common.lua and every health.lua is generated from it and the kind's src/<Kind>.lua.
const (
	// SourceDir is the directory under config/argocd holding the sources.
	SourceDir = "src"
	// CommonSource is the part of every health check, in SourceDir.
	CommonSource = "common.lua"
	// sourceLine starts a line of a source that never reaches a health.lua: a note for
	// whoever edits the source ("--@ ..."), a slot or a part.
	sourceLine = "--@"
	// slotLine ("--@slot <name>"), in common.lua, is where a kind's part <name> goes. It is
	// followed by an empty line, dropped with it when the kind has no such part.
	slotLine = "--@slot "
	// partLine ("--@part <name>"), in src/<Kind>.lua, starts the kind's part <name>; it runs
	// to the next part or the end of the file.
	partLine = "--@part "
)

// healthScriptHeader starts every generated health.lua; %[1]s is the kind.
const healthScriptHeader = `-- Argo CD health check for openshell.dev/v1alpha1 %[1]s (openshell-operator).
-- Generated from config/argocd/src/common.lua and config/argocd/src/%[1]s.lua by
-- ` + "`go test ./test/gitops -run TestGeneratedFiles -update`" + `; do not edit.
`

// SourceKinds lists the kinds with a source under dir (config/argocd): the files
// <dir>/src/<Kind>.lua other than common.lua, sorted.
func SourceKinds(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, SourceDir, "*.lua"))
	if err != nil {
		return nil, fmt.Errorf("listing health check sources: %w", err)
	}
	kinds := make([]string, 0, len(matches))
	for _, m := range matches {
		if name := filepath.Base(m); name != CommonSource {
			kinds = append(kinds, strings.TrimSuffix(name, ".lua"))
		}
	}
	sort.Strings(kinds)
	return kinds, nil
}

// RenderHealthScript generates the health check of kind from its sources under dir
// (config/argocd): the header, then src/common.lua with each slot replaced by the kind's part
// of that name from src/<Kind>.lua, or dropped with the empty line after it when the kind has
// none. Notes, slot and part lines never reach the script; a part without a slot, a slot or
// part given twice and a script a YAML literal block would not reproduce are errors.
func RenderHealthScript(dir, kind string) (string, error) {
	common, err := os.ReadFile(filepath.Join(dir, SourceDir, CommonSource))
	if err != nil {
		return "", fmt.Errorf("reading the common health check source: %w", err)
	}
	own, err := os.ReadFile(filepath.Join(dir, SourceDir, kind+".lua"))
	if err != nil {
		return "", fmt.Errorf("reading the health check source of %s: %w", kind, err)
	}
	parts, err := parseParts(string(own))
	if err != nil {
		return "", fmt.Errorf("%s.lua: %w", kind, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, healthScriptHeader, kind)
	lines := slices.Collect(strings.Lines(string(common)))
	slots := map[string]bool{}
	for i := 0; i < len(lines); i++ {
		text := strings.TrimSuffix(lines[i], "\n")
		if !strings.HasPrefix(text, sourceLine) {
			b.WriteString(lines[i])
			continue
		}
		name, isSlot := directive(text, slotLine)
		if !isSlot {
			if !isNote(text) {
				return "", fmt.Errorf("%s:%d: %q is neither a note nor a slot", CommonSource, i+1, text)
			}
			continue
		}
		switch {
		case name == "":
			return "", fmt.Errorf("%s:%d: a slot needs one name", CommonSource, i+1)
		case slots[name]:
			return "", fmt.Errorf("%s:%d: slot %q given twice", CommonSource, i+1, name)
		case i+1 == len(lines) || lines[i+1] != "\n":
			return "", fmt.Errorf("%s:%d: slot %q must be followed by an empty line", CommonSource, i+1, name)
		}
		slots[name] = true
		part, ok := parts[name]
		if !ok {
			i++ // the empty line after the slot goes with it
			continue
		}
		b.WriteString(part)
	}
	for _, name := range slices.Sorted(maps.Keys(parts)) {
		if !slots[name] {
			return "", fmt.Errorf("%s.lua: part %q has no slot in %s", kind, name, CommonSource)
		}
	}
	script := b.String()
	if err := checkBlockScalar(script); err != nil {
		return "", fmt.Errorf("health check of %s: %w", kind, err)
	}
	return script, nil
}

// parseParts reads a kind's source: notes and empty lines, then its parts, each from its part
// line to the next one, without the empty lines around it.
func parseParts(src string) (map[string]string, error) {
	parts := map[string]string{}
	name, body := "", ""
	flush := func() error {
		if name == "" {
			return nil
		}
		part := strings.Trim(body, "\n")
		if part == "" {
			return fmt.Errorf("part %q is empty", name)
		}
		parts[name] = part + "\n"
		return nil
	}
	n := 0
	for line := range strings.Lines(src) {
		n++
		text := strings.TrimSuffix(line, "\n")
		if !strings.HasPrefix(text, sourceLine) {
			if name == "" && strings.TrimSpace(text) != "" {
				return nil, fmt.Errorf("line %d is outside a part", n)
			}
			body += line
			continue
		}
		next, isPart := directive(text, partLine)
		if !isPart {
			if !isNote(text) {
				return nil, fmt.Errorf("line %d: %q is neither a note nor a part", n, text)
			}
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		switch _, seen := parts[next]; {
		case next == "":
			return nil, fmt.Errorf("line %d: a part needs one name", n)
		case seen:
			return nil, fmt.Errorf("line %d: part %q given twice", n, next)
		}
		name, body = next, ""
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return parts, nil
}

// directive returns the name of a slot or part line of the given prefix ("" when it is not
// one word).
func directive(text, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(text, prefix)
	if !ok {
		return "", false
	}
	if name := strings.TrimSpace(rest); name != "" && !strings.ContainsAny(name, " \t") {
		return name, true
	}
	return "", true
}

// isNote reports whether a source line is a note: "--@" alone or followed by a space.
func isNote(text string) bool {
	return text == sourceLine || strings.HasPrefix(text, sourceLine+" ")
}

// ConfigMapKey is the argocd-cm key of the health check of kind.
func ConfigMapKey(kind string) string {
	return "resource.customizations.health." + Group + "_" + kind
}

// configMapHeader starts the rendered argocd-cm snippet.
const configMapHeader = `# Argo CD health checks for the openshell.dev kinds. Merge these keys into the argocd-cm
# ConfigMap of your Argo CD installation (see docs/gitops.md).
#
# Generated from config/argocd/src (the scripts of config/argocd/openshell.dev/<Kind>/health.lua);
# do not edit. Regenerate with:
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

// RenderHealthScripts generates the health check of every kind with a source under dir
// (config/argocd) as RenderHealthScript does, by kind; no source is an error.
func RenderHealthScripts(dir string) (map[string]string, error) {
	kinds, err := SourceKinds(dir)
	if err != nil {
		return nil, err
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("no health check sources under %s", filepath.Join(dir, SourceDir))
	}
	scripts := make(map[string]string, len(kinds))
	for _, kind := range kinds {
		if scripts[kind], err = RenderHealthScript(dir, kind); err != nil {
			return nil, err
		}
	}
	return scripts, nil
}

// RenderConfigMap renders the argocd-cm snippet holding the health check of every kind with a
// source under dir (config/argocd), generated as RenderHealthScripts does, one literal block
// per kind in name order.
func RenderConfigMap(dir string) ([]byte, error) {
	scripts, err := RenderHealthScripts(dir)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(configMapHeader)
	for _, kind := range slices.Sorted(maps.Keys(scripts)) {
		script := scripts[kind]
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
