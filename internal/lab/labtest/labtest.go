// Package labtest gives tests a lab (internal/lab): skipped unless the test
// runs as root, removed when the test ends.
package labtest

import (
	"os"
	"testing"

	"github.com/carpd/carpd/internal/lab"
)

// New makes a lab whose namespaces are named after prefix. It skips the
// test unless it runs as root (namespaces need it), and closes the lab at
// cleanup, failing the test if that fails.
func New(t testing.TB, prefix string) *lab.Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
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
