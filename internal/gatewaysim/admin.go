package gatewaysim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	sandboxv1 "github.com/openshell-operator/openshell-operator/gen/openshell/sandbox/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// AdminHandler exposes fault injection to other processes as a small JSON API. Serve it on
// loopback only: it is unauthenticated by design.
//
//	POST /faults/error    {"method":"GetSandbox","code":"Unavailable","message":"down","times":-1}
//	POST /faults/latency  {"method":"*","latency":"2s"}
//	POST /faults/clear
//	POST /restart
//	POST /streams/cut                            ends every WatchSandbox stream, keeps state: {"cut":3}
//	POST /sandboxes/{name}/phase                {"phase":"ERROR"}
//	POST /sandboxes/{name}/driver-condition     {"status":"False","reason":"Unschedulable","message":"..."}
//	POST /sandboxes/{name}/supervisor           {"connected":false}
//	POST /sandboxes/{name}/logs                 {"level":"ERROR","source":"sandbox","message":"..."}
//	POST /sandboxes/{name}/policy-load-failure  {"error":"landlock failed"} ("" clears)
//	POST /sandboxes/{name}/draft-chunks         {"ruleName":"pypi","rule":{...},"securityNotes":"..."}
//	                                            -> 201 {"id":"...","superseded":["..."]}
//	GET  /calls                                  {"CreateSandbox":3,...}
//	GET  /calls/{name}                           calls that named one object: {"GetProvider":1,...}
func (s *Simulator) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /faults/error", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method, Code, Message string
			Times                 int
		}
		if !decode(w, r, &req) {
			return
		}
		code, ok := parseCode(req.Code)
		if !ok {
			http.Error(w, fmt.Sprintf("unknown gRPC code %q", req.Code), http.StatusBadRequest)
			return
		}
		if req.Times == 0 {
			req.Times = -1
		}
		s.InjectError(defaultMethod(req.Method), code, req.Message, req.Times)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /faults/latency", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Method, Latency string }
		if !decode(w, r, &req) {
			return
		}
		d, err := time.ParseDuration(req.Latency)
		if err != nil {
			http.Error(w, "latency: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.InjectLatency(defaultMethod(req.Method), d)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /faults/clear", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, _ *http.Request) {
		s.Restart()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /streams/cut", s.serveCutStreams)
	mux.HandleFunc("POST /sandboxes/{name}/phase", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Phase string }
		if !decode(w, r, &req) {
			return
		}
		v, ok := openshellv1.SandboxPhase_value["SANDBOX_PHASE_"+strings.ToUpper(req.Phase)]
		if !ok {
			http.Error(w, fmt.Sprintf("unknown phase %q", req.Phase), http.StatusBadRequest)
			return
		}
		if !s.ForcePhase(r.PathValue("name"), openshellv1.SandboxPhase(v)) {
			http.Error(w, "sandbox not found", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /sandboxes/{name}/policy-load-failure", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Error string }
		if !decode(w, r, &req) {
			return
		}
		s.FailPolicyLoad(r.PathValue("name"), req.Error)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /sandboxes/{name}/draft-chunks", s.adminDraftChunk)
	mux.HandleFunc("POST /sandboxes/{name}/driver-condition", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Status, Reason, Message string }
		if !decode(w, r, &req) {
			return
		}
		writeStatus(w, s.DriverCondition(r.PathValue("name"), req.Status, req.Reason, req.Message))
	})
	mux.HandleFunc("POST /sandboxes/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Source, Level, Target, Message string }
		if !decode(w, r, &req) {
			return
		}
		if !s.AppendLog(r.PathValue("name"), LogLine{Source: req.Source, Level: req.Level, Target: req.Target, Message: req.Message}) {
			http.Error(w, "sandbox not found", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /sandboxes/{name}/supervisor", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Connected bool }
		if !decode(w, r, &req) {
			return
		}
		writeStatus(w, s.SetSupervisorConnected(r.PathValue("name"), req.Connected))
	})
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Calls())
	})
	mux.HandleFunc("GET /calls/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.CallsFor(r.PathValue("name")))
	})
	return mux
}

// draftChunkRequest is the body of POST /sandboxes/{name}/draft-chunks; rule is a
// NetworkPolicyRule in protobuf JSON (field names as in the proto or lowerCamelCase).
type draftChunkRequest struct {
	RuleName      string          `json:"ruleName"`
	Rule          json.RawMessage `json:"rule"`
	Rationale     string          `json:"rationale"`
	SecurityNotes string          `json:"securityNotes"`
	Binary        string          `json:"binary"`
}

// adminDraftChunk proposes a draft chunk from outside the process, as the in-sandbox advisor
// would through SubmitPolicyAnalysis (a sandbox-principal RPC no test client can call).
func (s *Simulator) adminDraftChunk(w http.ResponseWriter, r *http.Request) {
	var req draftChunkRequest
	if !decode(w, r, &req) {
		return
	}
	in := DraftChunk{RuleName: req.RuleName, Rationale: req.Rationale, SecurityNotes: req.SecurityNotes, Binary: req.Binary}
	if len(req.Rule) > 0 && string(req.Rule) != "null" {
		in.Rule = &sandboxv1.NetworkPolicyRule{}
		if err := protojson.Unmarshal(req.Rule, in.Rule); err != nil {
			http.Error(w, "rule: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	id, superseded, err := s.ProposeDraftChunk(r.PathValue("name"), in)
	if err != nil {
		writeStatus(w, err)
		return
	}
	if superseded == nil {
		superseded = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "superseded": superseded})
}

// writeStatus answers 204 for nil, else the gRPC error's message with 404 for NOT_FOUND,
// 409 for FAILED_PRECONDITION and 400 otherwise.
func writeStatus(w http.ResponseWriter, err error) {
	switch status.Code(err) {
	case codes.OK:
		w.WriteHeader(http.StatusNoContent)
	case codes.NotFound:
		http.Error(w, status.Convert(err).Message(), http.StatusNotFound)
	case codes.FailedPrecondition:
		http.Error(w, status.Convert(err).Message(), http.StatusConflict)
	default:
		http.Error(w, status.Convert(err).Message(), http.StatusBadRequest)
	}
}

func defaultMethod(m string) string {
	if m == "" {
		return "*"
	}
	return m
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(v); err != nil {
		http.Error(w, "invalid JSON: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// parseCode accepts gRPC code names in any case, with or without underscores.
func parseCode(name string) (codes.Code, bool) {
	want := strings.ToLower(strings.ReplaceAll(name, "_", ""))
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if strings.ToLower(c.String()) == want {
			return c, true
		}
	}
	return 0, false
}
