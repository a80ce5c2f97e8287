// Package labtest gives tests a lab (internal/lab), removed when the test
// ends, and the one way a test reports a missing prerequisite (root, a
// program, a file, a kernel feature): a skip on a developer's machine, a
// failure when CI is set. scripts/test.sh (the test command) sets CI, so
// that a test meant to run there can never pass as skipped or degraded.
// OpenDir and WriteFile make the files of a test that runs a program as
// another user (nobody, the service's user).
package labtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/carpd/carpd/internal/lab"
)

// CI reports whether the tests run under the test command (CI set in the
// environment), where every prerequisite must be met.
func CI() bool { return os.Getenv("CI") != "" }

// Missing reports that a prerequisite of the test is missing: the test
// fails when CI is set, and is skipped otherwise. It does not return.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("%s (a missing prerequisite fails the test with CI set; scripts/setup.sh installs what the tests need)", msg)
	}
	t.Skipf("skipping: %s (with CI set this is a failure)", msg)
}

// RequireRoot: the test needs root (network namespaces, chown, nice).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root")
	}
}

// Tool returns the path of the program name, which the test needs.
func Tool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s is not installed: %v", name, err)
	}
	return path
}

// File checks that the file the test needs exists.
func File(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%v", err)
	}
}

// New makes a lab whose namespaces are named after prefix. It needs root
// (RequireRoot), and closes the lab at cleanup, failing the test if that
// fails.
func New(t testing.TB, prefix string) *lab.Lab {
	t.Helper()
	RequireRoot(t)
	l, err := lab.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("removing the lab: %v", err)
		}
	})
	return l
}

// OpenDir returns a temporary directory, removed when the test ends, that
// every user may search (and its parent too).
func OpenDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// WriteFile writes body to path with the mode mode exactly (whatever the
// umask), and returns path.
func WriteFile(t testing.TB, path, body string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}
