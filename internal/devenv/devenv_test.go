package devenv

import "testing"

func TestPatchEndpoint(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"placeholder replaced", "spec:\n  endpoint: 127.0.0.1:8443\n  timeout: 30s\n", "spec:\n  endpoint: 127.0.0.1:40001\n  timeout: 30s\n"},
		{"other endpoint kept", "spec:\n  endpoint: gw.example:443\n", "spec:\n  endpoint: gw.example:443\n"},
		{"only endpoint keys", "host: 127.0.0.1:8443\n", "host: 127.0.0.1:8443\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PatchEndpoint(tt.in, "127.0.0.1:40001"); got != tt.want {
				t.Errorf("PatchEndpoint() = %q, want %q", got, tt.want)
			}
		})
	}
}
