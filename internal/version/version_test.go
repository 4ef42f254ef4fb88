package version

import (
	"strings"
	"testing"
)

func TestStringNamesEveryField(t *testing.T) {
	old := [3]string{Version, Commit, Date}
	t.Cleanup(func() { Version, Commit, Date = old[0], old[1], old[2] })
	Version, Commit, Date = "v0.1.2", "abc1234", "2026-12-01T00:00:00Z"
	got := String("manager")
	for _, want := range []string{"manager v0.1.2", "commit abc1234", "built 2026-12-01T00:00:00Z"} {
		if !strings.Contains(got, want) {
			t.Errorf("String() = %q, want it to contain %q", got, want)
		}
	}
}
