package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carpd/carpd/internal/access"
	"github.com/carpd/carpd/internal/lab/labtest"
	"github.com/carpd/carpd/internal/service"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// carpdBin builds carpd once for the package's tests, into a directory
// every user may search (the tests run it as nobody too).
func carpdBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "carpd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "carpd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		buildErr = os.Chmod(dir, 0o755)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// runBin runs the built carpd with args in a network namespace of its own
// (unshare --net, as root: a start that should have been refused holds
// nothing of the host's), or as uid when uid is not 0 (which can hold
// nothing), and returns its exit status and stderr.
func runBin(t *testing.T, uid int, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	if os.Geteuid() == 0 && uid == 0 {
		cmd = exec.CommandContext(ctx, "unshare", append([]string{"--net", carpdBin(t)}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, carpdBin(t), args...)
	}
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("carpd %q still running after 20 s; stderr:\n%s", args, stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatal(err)
	return 0, ""
}

// requireRoot: the test needs root (a network namespace of its own for
// carpd, the user nobody); a failure with CI set (labtest.Missing).
func requireRoot(t *testing.T) {
	t.Helper()
	labtest.RequireRoot(t)
}

// TestExitStatus runs the built carpd: a bad command line exits 64
// (EX_USAGE), a configuration refused at start 78 (EX_CONFIG), the checks
// 0 or 2.
func TestExitStatus(t *testing.T) {
	requireRoot(t)
	dir := labtest.OpenDir(t)
	empty := labtest.WriteFile(t, filepath.Join(dir, "empty.toml"), "", 0o644)
	good := labtest.WriteFile(t, filepath.Join(dir, "good.toml"), "[[vhid]]\ninterface = \"lo\"\nvhid = 1\naddresses = [\"192.0.2.50/32\"]\n", 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"a bad flag", []string{"--config", good, "--frobnicate"}, service.ExitUsage, "frobnicate"},
		{"a stray argument", []string{"--config", good, "extra"}, service.ExitUsage, `"extra"`},
		{"two configurations", []string{"--config", good, "--rc-conf", empty}, service.ExitUsage, "give one of"},
		{"an empty configuration", []string{"--config", empty}, service.ExitConfig, "no vhid configured"},
		{"a missing configuration", []string{"--config", filepath.Join(dir, "none.toml")}, service.ExitConfig, "no such file"},
		{"--check-config of an empty file", []string{"--check-config", empty}, service.ExitProblems, "no vhid configured"},
		{"--check-config of a good file", []string{"--check-config", good}, service.ExitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runBin(t, 0, tc.args...)
			if code != tc.code {
				t.Errorf("carpd %q: exit %d, want %d; stderr:\n%s", tc.args, code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("carpd %q: stderr lacks %q:\n%s", tc.args, tc.want, stderr)
			}
		})
	}
	// As the service would meet it: a file root alone may read, a
	// directory root alone may search.
	nobody, err := access.LookupUser("65534")
	if err != nil {
		labtest.Missing(t, "no user 65534: %v", err)
	}
	closed := filepath.Join(dir, "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	private := labtest.WriteFile(t, filepath.Join(dir, "private.toml"), "", 0o600)
	hidden := labtest.WriteFile(t, filepath.Join(closed, "carpd.toml"), "", 0o644)
	for _, tc := range []struct {
		name, path, want string
	}{
		{"a configuration the user cannot read", private, fmt.Sprintf(
			"carpd: load config: open %s: permission denied: carpd runs as uid 65534 (%s): user %[2]s cannot read it (mode 0600, owner root:root); fix: chown root:%s %[1]s; chmod 0640 %[1]s\n",
			private, nobody.Name, nobody.GroupName)},
		{"a configuration in a directory the user cannot search", hidden, fmt.Sprintf(
			"carpd: load config: open %s: permission denied: carpd runs as uid 65534 (%s): user %[2]s cannot search the directory %s (mode 0700, owner root:root); fix: chgrp %s %[3]s; chmod g+x %[3]s\n",
			hidden, nobody.Name, closed, nobody.GroupName)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runBin(t, 65534, "--config", tc.path)
			if code != service.ExitConfig {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, service.ExitConfig, stderr)
			}
			if diff := cmp.Diff(tc.want, stderr); diff != "" {
				t.Errorf("stderr mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStartAndCheckAgree feeds bad configurations to the daemon's start
// and to the checks: each refuses every one with the same messages, the
// start with 78 and the checks with 2. What only this host makes wrong (an
// interface, a hook) passes --check-config, the file alone, and is refused
// by --check and the start alike.
func TestStartAndCheckAgree(t *testing.T) {
	requireRoot(t)
	dir := labtest.OpenDir(t)
	const vhid = "[[vhid]]\ninterface = \"lo\"\nvhid = 1\naddresses = [\"192.0.2.50/32\"]\n"
	for _, tc := range []struct {
		name, body string
		host       bool // a problem of this host, not of the file
		want       string
	}{
		{"empty.toml", "", false, "no vhid configured"},
		{"comments.toml", "# preempt = true\n\n# [[vhid]]\n", false, "no vhid configured"},
		{"globals.toml", "preempt = true\nlog-level = \"debug\"\n", false, "no vhid configured"},
		{"rc.conf", "hostname=\"fw1\"\nifconfig_lo=\"inet 192.0.2.2/24\"\n", false, "no vhid configured"},
		{"toml-in.rc.conf", vhid, false, "looks like carpd TOML"},
		{"carpd.conf", "preempt = true\n" + vhid, false, "looks like carpd TOML"},
		{"rc-in.toml", "ifconfig_lo_alias0=\"inet 192.0.2.50/32 vhid 1\"\n", false, "looks like a FreeBSD rc.conf"},
		{"unknown-key.toml", "quorum = \"all\"\n" + vhid, false, `"quorum": unknown key`},
		{"bad-vhid.toml", strings.Replace(vhid, "vhid = 1", "vhid = 300", 1), false, "vhid must be 1..255"},
		{"missing-password-file.toml", vhid + "password-file = \"none.pass\"\n", false, "no such file"},
		{"missing-interface.toml", strings.Replace(vhid, `"lo"`, `"carpdnone0"`, 1), true, "carpdnone0"},
		{"missing-hook.toml", "upscript = \"/nonexistent/up\"\n" + vhid, true, "/nonexistent/up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := labtest.WriteFile(t, filepath.Join(dir, tc.name), tc.body, 0o644)
			startCode, start := runBin(t, 0, "--config", path)
			checkCode, check := runBin(t, 0, "--check-config", path, "--check", "--check-user", "root")
			fileCode, file := runBin(t, 0, "--check-config", path)
			if startCode != service.ExitConfig || checkCode != service.ExitProblems {
				t.Errorf("start: exit %d, want %d; --check: exit %d, want %d\nstart:\n%s\n--check:\n%s",
					startCode, service.ExitConfig, checkCode, service.ExitProblems, start, check)
			}
			if !strings.Contains(start, tc.want) || !strings.Contains(start, path) {
				t.Errorf("start: stderr lacks %q and the file's name:\n%s", tc.want, start)
			}
			if diff := cmp.Diff(start, check); diff != "" {
				t.Errorf("start and --check disagree (-start +check):\n%s", diff)
			}
			if tc.host {
				if fileCode != service.ExitOK {
					t.Errorf("--check-config (the file alone): exit %d, want 0; stderr:\n%s", fileCode, file)
				}
				return
			}
			if fileCode != service.ExitProblems {
				t.Errorf("--check-config: exit %d, want %d", fileCode, service.ExitProblems)
			}
			if diff := cmp.Diff(start, file); diff != "" {
				t.Errorf("start and --check-config disagree (-start +check-config):\n%s", diff)
			}
		})
	}
}
