package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// carpctlCommands are the commands carpctl's usage lists.
func carpctlCommands(t *testing.T) []string {
	t.Helper()
	out, _ := exec.Command(carpctlBin, "--help").CombinedOutput()
	_, list, ok := strings.Cut(string(out), "commands:\n")
	if !ok {
		t.Fatalf("carpctl --help lists no commands:\n%s", out)
	}
	list, _, _ = strings.Cut(list, "\n\n")
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z][a-z-]*)`).FindAllStringSubmatch(list, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	if len(names) < 5 {
		t.Fatalf("carpctl --help lists %q", names)
	}
	return names
}

// jsonDocs decodes out as JSON documents; ok is false when out holds
// anything else.
func jsonDocs(out []byte) (docs []map[string]any, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, true
		}
		if err != nil {
			return docs, false
		}
		docs = append(docs, doc)
	}
}

// TestCarpctlJSONEveryCommand: each command carpctl's usage lists, run
// with --json against a real carpd, prints exactly one JSON document on
// stdout and nothing on stderr (events: one per line, until interrupted);
// with a bad argument, one error document.
func TestCarpctlJSONEveryCommand(t *testing.T) {
	t.Parallel() // control and configuration, no timing measured: see parallel_test.go
	c := newCluster(t)
	startPair(t, c)
	args := map[string][]string{
		"status": nil, "stats": nil, "state": {"100", "master"}, "demote": {"+1"},
		"log-level": {"info"}, "reload": nil, "is-master": {"100"}, "events": nil, "version": nil,
	}
	for _, name := range carpctlCommands(t) {
		a, ok := args[name]
		if !ok {
			t.Errorf("carpctl %s: no arguments to try it with here", name)
			continue
		}
		for _, bad := range []bool{false, true} {
			cmdArgs := append([]string{"--control", c.ctlPath(c.master), "--json", name}, a...)
			if bad {
				cmdArgs = append(cmdArgs, "unexpected")
			}
			what := "carpctl " + strings.Join(cmdArgs[2:], " ")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			cmd := exec.CommandContext(ctx, carpctlBin, cmdArgs...)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if name == "events" && !bad {
				// Following: interrupted after a while, as by ^C.
				time.AfterFunc(time.Second, func() { _ = cmd.Process.Signal(os.Interrupt) })
			}
			err := cmd.Wait()
			cancel()
			docs, ok := jsonDocs(out.Bytes())
			switch {
			case !ok || errOut.Len() != 0:
				t.Errorf("%s (%v): stdout not JSON alone, or stderr not empty:\n%s\nstderr: %s", what, err, out.String(), errOut.String())
			case bad:
				if len(docs) != 1 || docs[0]["error"] == nil || err == nil {
					t.Errorf("%s (%v): want one error document:\n%s", what, err, out.String())
				}
			case name == "events":
				lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
				if err != nil || len(docs) < 1 || len(lines) != len(docs) {
					t.Errorf("%s (%v): want JSON Lines, got:\n%s", what, err, out.String())
				}
			default:
				if err != nil || len(docs) != 1 || docs[0]["error"] != nil {
					t.Errorf("%s (%v): want one document, got %d:\n%s", what, err, len(docs), out.String())
				}
			}
		}
	}
}
