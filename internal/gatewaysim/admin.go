package gatewaysim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

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
//	POST /sandboxes/{name}/policy-load-failure  {"error":"landlock failed"} ("" clears)
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
