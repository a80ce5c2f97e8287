package hooks

import (
	"bytes"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// execFaults runs ExecWithoutCapabilities on a command that does not exist
// (so that it never execs, whatever happens) as a user other than root,
// with the given system calls failing; it returns what was written as
// warnings and the error.
func execFaults(t *testing.T, prio, get, set bool) (string, error) {
	t.Helper()
	oldPrio, oldGet, oldSet, oldUID, oldW := setpriority, capget, capset, getuid, warnings
	defer func() { setpriority, capget, capset, getuid, warnings = oldPrio, oldGet, oldSet, oldUID, oldW }()
	var w bytes.Buffer
	warnings = &w
	getuid = func() int { return 65534 }
	if prio {
		setpriority = func(int, int, int) error { return syscall.EACCES }
	}
	if get {
		capget = func(*unix.CapUserHeader, *unix.CapUserData) error { return syscall.EINVAL }
	}
	if set {
		capset = func(*unix.CapUserHeader, *unix.CapUserData) error { return syscall.EPERM }
	}
	done := make(chan error)
	// Its own goroutine: ExecWithoutCapabilities locks the thread.
	go func() { done <- ExecWithoutCapabilities([]string{"/nonexistent/carpd-hook"}) }()
	err := <-done
	return w.String(), err
}

// TestExecRefusesWithCapabilities: a hook whose inheritable capabilities
// cannot be cleared (capget or capset fails) does not run: the error says
// so, and the command is not even looked up.
func TestExecRefusesWithCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name     string
		get, set bool
		want     string
	}{
		{"capset", false, true, "clearing the inheritable capabilities: operation not permitted"},
		{"capget", true, false, "reading the capabilities to clear the inheritable ones: invalid argument"},
	} {
		_, err := execFaults(t, false, tc.get, tc.set)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s failing: ExecWithoutCapabilities = %v, want %q", tc.name, err, tc.want)
		}
	}
	// With both working, it gets as far as looking the command up.
	if _, err := execFaults(t, false, false, false); err == nil || !strings.Contains(err.Error(), "/nonexistent/carpd-hook") {
		t.Errorf("ExecWithoutCapabilities = %v, want the lookup's error", err)
	}
}

// TestExecWarnsPriority: a nice value that cannot be reset is a warning
// line, not a refusal.
func TestExecWarnsPriority(t *testing.T) {
	w, err := execFaults(t, true, false, false)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/carpd-hook") {
		t.Errorf("ExecWithoutCapabilities = %v, want the lookup's error", err)
	}
	const want = "carpd: hook: /nonexistent/carpd-hook runs at carpd's raised priority: resetting the nice value: permission denied\n"
	if w != want {
		t.Errorf("warnings %q, want %q", w, want)
	}
}
