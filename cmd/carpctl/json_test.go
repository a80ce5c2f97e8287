package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/control"
	"github.com/carpd/carpd/internal/daemon"
)

// fakeDaemon answers the control API with one MASTER vhid, and an event
// stream of two events.
type fakeDaemon struct{}

func (fakeDaemon) Status(context.Context) (api.Status, error) {
	return api.Status{Version: api.Version, Demotions: []api.Demotion{}, VHIDs: []api.VHID{
		{Interface: "eth0", VHID: 100, Protocol: "carp", State: "MASTER", AdvBase: 1, Addresses: []string{"192.0.2.50/32"}},
	}}, nil
}

func (fakeDaemon) Stats(context.Context) (api.Stats, error) {
	return api.Stats{Version: api.Version, ConfigLastReloadSuccessful: true}, nil
}

func (d fakeDaemon) Force(ctx context.Context, vhid int, iface, state string) (api.Status, error) {
	return d.Status(ctx)
}

func (d fakeDaemon) DemoteOperator(ctx context.Context, req api.DemoteRequest) (api.Status, error) {
	return d.Status(ctx)
}

func (fakeDaemon) SetLogLevel(context.Context, string) error { return nil }

func (fakeDaemon) Subscribe(context.Context) (*daemon.Sub, error) {
	c := make(chan api.Event, 2)
	c <- api.Event{Version: api.Version, Seq: 1, Type: "snapshot", VHID: 100, Interface: "eth0", State: "MASTER"}
	c <- api.Event{Version: api.Version, Seq: 2, Type: "transition", VHID: 100, Interface: "eth0", From: "BACKUP", To: "MASTER"}
	close(c)
	return &daemon.Sub{C: c}, nil
}

func (fakeDaemon) Unsubscribe(*daemon.Sub) {}

func (fakeDaemon) ReloadConfig(context.Context) (api.ReloadResult, error) {
	return api.ReloadResult{Version: api.Version, Added: []string{}, Removed: []string{}, Changed: []string{}, Unchanged: 1, Warnings: []string{}}, nil
}

// jsonArgs are the arguments each command is tried with: every command of
// carpctl's table must have some, so that a new command without --json
// support fails TestJSONEveryCommand.
var jsonArgs = map[string][]string{
	"status":    nil,
	"stats":     nil,
	"state":     {"100", "master"},
	"demote":    {"+10", "--reason", "patching"},
	"log-level": {"debug"},
	"reload":    nil,
	"is-master": {"100"},
	"events":    nil,
	"version":   nil,
}

// serveFake serves fakeDaemon on a control socket and returns its path.
func serveFake(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "carpd.sock")
	srv, err := control.Listen(sock, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(fakeDaemon{}) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return sock
}

// documents decodes stdout as a sequence of JSON documents; it fails t on
// anything that is not JSON.
func documents(t *testing.T, what string, stdout []byte) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(stdout))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Errorf("%s: stdout is not JSON documents only (%v):\n%s", what, err, stdout)
			return docs
		}
		docs = append(docs, doc)
	}
}

// TestJSONEveryCommand: every command of carpctl's table, run with --json
// against a control socket, prints exactly one JSON document on stdout
// (events: one per line) and nothing on stderr; when carpd is not
// running, or the command line is wrong, exactly one JSON error document.
func TestJSONEveryCommand(t *testing.T) {
	sock := serveFake(t)
	none := filepath.Join(t.TempDir(), "none.sock")
	var names []string
	for _, sc := range commands {
		names = append(names, sc.name)
		args, ok := jsonArgs[sc.name]
		if !ok {
			t.Errorf("carpctl %s: no arguments in jsonArgs: add them, and --json support", sc.name)
			continue
		}
		for _, tc := range []struct {
			sock string
			args []string
			code int
		}{
			{sock, args, exitOK},
			{none, args, exitNotRunning},
			{sock, append(slices.Clone(args), "unexpected", "arguments"), exitUsage},
		} {
			what := "carpctl --json " + sc.name + " " + strings.Join(tc.args, " ")
			if tc.sock == none {
				what += " (no carpd)"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var out, errOut bytes.Buffer
			code := run(ctx, append([]string{"--control", tc.sock, "--json", sc.name}, tc.args...), &out, &errOut)
			cancel()
			if code != tc.code || errOut.Len() != 0 {
				t.Errorf("%s: exit %d, stderr %q; want %d and nothing", what, code, errOut.String(), tc.code)
			}
			docs := documents(t, what, out.Bytes())
			switch {
			case tc.code != exitOK:
				if len(docs) != 1 || docs[0]["error"] == nil || docs[0]["error"] == "" {
					t.Errorf("%s: want one error document, got:\n%s", what, out.String())
				}
			case sc.name == "events":
				// JSON Lines: each line one document.
				lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
				if len(docs) != 2 || len(lines) != 2 {
					t.Errorf("%s: want 2 events, one per line, got:\n%s", what, out.String())
				}
			default:
				if len(docs) != 1 || docs[0]["error"] != nil {
					t.Errorf("%s: want one document, got %d:\n%s", what, len(docs), out.String())
				}
			}
		}
	}
	for name := range jsonArgs {
		if !slices.Contains(names, name) {
			t.Errorf("jsonArgs has %q, which is not a command", name)
		}
	}
}

// TestJSONUnknownCommand: an unknown command under --json is one error
// document too.
func TestJSONUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"--json", "frob"}, &out, &errOut)
	docs := documents(t, "carpctl --json frob", out.Bytes())
	if code != exitUsage || errOut.Len() != 0 || len(docs) != 1 || !strings.Contains(docs[0]["error"].(string), `unknown command "frob"`) {
		t.Errorf("carpctl --json frob: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}
