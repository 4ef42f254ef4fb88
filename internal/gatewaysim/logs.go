package gatewaysim

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// Log sources of SandboxLogLine: the gateway itself or the in-sandbox supervisor.
const (
	logSourceGateway = "gateway"
	logSourceSandbox = "sandbox"
	// defaultLogLines is what GetSandboxLogs returns when lines is 0.
	defaultLogLines = 2000
)

// logLevels ranks the levels min_level compares (tracing's order).
var logLevels = map[string]int{"TRACE": 1, "DEBUG": 2, "INFO": 3, "WARN": 4, "WARNING": 4, "ERROR": 5}

// logFilter is the filter of GetSandboxLogs and of a WatchSandbox log stream.
type logFilter struct {
	sinceMs  int64
	sources  []string
	minLevel int
}

func newLogFilter(sinceMs int64, sources []string, minLevel string) logFilter {
	return logFilter{sinceMs: sinceMs, sources: sources, minLevel: logLevels[strings.ToUpper(strings.TrimSpace(minLevel))]}
}

// keep: at or after since_ms, from one of sources (empty means all; a line without a source
// is a gateway line), at min_level or above (empty or unknown means all levels).
func (f logFilter) keep(l *openshellv1.SandboxLogLine) bool {
	if f.sinceMs > 0 && l.GetTimestampMs() < f.sinceMs {
		return false
	}
	if len(f.sources) > 0 {
		src := l.GetSource()
		if src == "" {
			src = logSourceGateway
		}
		if !containsFold(f.sources, src) {
			return false
		}
	}
	return f.minLevel == 0 || logLevels[strings.ToUpper(l.GetLevel())] >= f.minLevel
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), v) {
			return true
		}
	}
	return false
}

// log appends a line to a sandbox's buffer and wakes the streams that follow its logs.
func (st *state) log(r *sandboxRec, source, level, target, msg string) {
	r.logs = append(r.logs, &openshellv1.SandboxLogLine{SandboxId: r.sb.Metadata.Id, TimestampMs: nowMs(), Level: level, Target: target, Message: msg, Source: source})
	wake(st.logWatchers[r.sb.Metadata.Id])
}

// LogLine is a line written into a sandbox's log buffer by AppendLog.
type LogLine struct {
	// Source is "gateway" or "sandbox" (default "sandbox": the supervisor's logs).
	Source string
	// Level is TRACE, DEBUG, INFO, WARN or ERROR (default INFO).
	Level string
	// Target is the tracing target (default "openshell_sandbox").
	Target string
	// Message is the text.
	Message string
}

// AppendLog writes a line into a sandbox's log buffer, as the supervisor's pushed logs would
// (PushSandboxLogs is sandbox-principal only); GetSandboxLogs returns it and WatchSandbox
// streams it to followers. It reports whether the sandbox exists.
func (s *Simulator) AppendLog(sandbox string, l LogLine) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.sandboxes[sandbox]
	if r == nil {
		return false
	}
	if l.Source == "" {
		l.Source = logSourceSandbox
	}
	if l.Level == "" {
		l.Level = "INFO"
	}
	if l.Target == "" {
		l.Target = "openshell_sandbox"
	}
	s.state.log(r, l.Source, strings.ToUpper(l.Level), l.Target, l.Message)
	return true
}

// GetSandboxLogs returns the newest lines of a sandbox's log buffer that pass since_ms,
// sources and min_level, oldest first; lines 0 means 2000.
func (s *Simulator) GetSandboxLogs(_ context.Context, req *openshellv1.GetSandboxLogsRequest) (*openshellv1.GetSandboxLogsResponse, error) {
	if req.GetSandboxId() == "" {
		return nil, status.Error(codes.InvalidArgument, "sandbox_id is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.state.sandboxByID(req.GetSandboxId())
	if r == nil {
		return nil, status.Error(codes.NotFound, "sandbox not found")
	}
	f := newLogFilter(req.GetSinceMs(), req.GetSources(), req.GetMinLevel())
	var logs []*openshellv1.SandboxLogLine
	for _, l := range r.logs {
		if f.keep(l) {
			logs = append(logs, proto.Clone(l).(*openshellv1.SandboxLogLine))
		}
	}
	n := int(req.GetLines())
	if n == 0 {
		n = defaultLogLines
	}
	if n < len(logs) {
		logs = logs[len(logs)-n:]
	}
	return &openshellv1.GetSandboxLogsResponse{Logs: logs, BufferTotal: uint32(len(r.logs))}, nil
}

// logCursor follows one sandbox's log buffer for a WatchSandbox stream.
type logCursor struct {
	filter logFilter
	next   int
}

// newLogCursor starts after the buffer's current end, replaying the last tail lines that
// pass the filter (log_tail_lines).
func newLogCursor(r *sandboxRec, f logFilter, tail uint32) (*logCursor, []*openshellv1.SandboxLogLine) {
	var replay []*openshellv1.SandboxLogLine
	for _, l := range r.logs {
		if f.keep(l) {
			replay = append(replay, l)
		}
	}
	if int(tail) < len(replay) {
		replay = replay[len(replay)-int(tail):]
	}
	return &logCursor{filter: f, next: len(r.logs)}, cloneLogs(replay)
}

// take returns the lines written since the last call that pass the filter.
func (c *logCursor) take(r *sandboxRec) []*openshellv1.SandboxLogLine {
	var out []*openshellv1.SandboxLogLine
	for _, l := range r.logs[min(c.next, len(r.logs)):] {
		if c.filter.keep(l) {
			out = append(out, l)
		}
	}
	c.next = len(r.logs)
	return cloneLogs(out)
}

func cloneLogs(in []*openshellv1.SandboxLogLine) []*openshellv1.SandboxLogLine {
	out := make([]*openshellv1.SandboxLogLine, len(in))
	for i, l := range in {
		out[i] = proto.Clone(l).(*openshellv1.SandboxLogLine)
	}
	return out
}
