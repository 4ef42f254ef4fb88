package gatewaysim

import (
	"encoding/json"
	"net/http"
)

// CutStreams ends every open WatchSandbox stream with UNAVAILABLE and keeps all state, as a
// gateway behind a proxy or load balancer that drops its connections does. It returns how many
// streams it cut.
func (s *Simulator) CutStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, ws := range s.state.watchers {
		for ch := range ws {
			close(ch)
			n++
		}
		delete(s.state.watchers, id)
	}
	return n
}

// serveCutStreams is POST /streams/cut: {"cut":3}.
func (s *Simulator) serveCutStreams(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int{"cut": s.CutStreams()})
}
