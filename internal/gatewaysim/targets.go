package gatewaysim

import (
	"maps"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// targetFields are the request fields that name a gateway object.
var targetFields = map[protoreflect.Name]bool{"name": true, "sandbox_name": true, "provider_name": true}

// targetHolders are the message fields followed to find a name: a provider's metadata.
var targetHolders = map[protoreflect.Name]bool{"provider": true, "metadata": true}

// requestTargets lists the gateway objects a request names: its name, sandbox_name and
// provider_name fields and the metadata name of an embedded provider, without duplicates.
func requestTargets(req any) []string {
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	var walk func(m protoreflect.Message, depth int)
	walk = func(m protoreflect.Message, depth int) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() || fd.IsMap():
			case fd.Kind() == protoreflect.StringKind && targetFields[fd.Name()]:
				if s := v.String(); s != "" && !seen[s] {
					seen[s] = true
					out = append(out, s)
				}
			case fd.Kind() == protoreflect.MessageKind && targetHolders[fd.Name()] && depth < 2:
				walk(v.Message(), depth+1)
			}
			return true
		})
	}
	walk(m.ProtoReflect(), 0)
	return out
}

// countTargets records a unary call under every object its request names.
func (s *Simulator) countTargets(method string, req any) {
	names := requestTargets(req)
	if len(names) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if s.byTarget[n] == nil {
			s.byTarget[n] = map[string]int{}
		}
		s.byTarget[n][method]++
	}
}

// CallsFor returns how many times each unary RPC (short name) named the gateway object name
// since the last ResetCounts: in its name, sandbox_name or provider_name field, or as the
// metadata name of the provider it carries. Tests use it to prove that no call concerned one
// object while other objects keep the gateway busy. Calls are counted before injected faults
// and authentication, like Calls.
func (s *Simulator) CallsFor(name string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := maps.Clone(s.byTarget[name])
	if out == nil {
		out = map[string]int{}
	}
	return out
}
