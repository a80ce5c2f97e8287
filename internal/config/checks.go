package config

// This file reads the [[check]] tables of the TOML file: health checks
// that demote the host or some vhids, or release vhids, while they fail
// (keepalived's track_script, track_file; carpd runs them without a shell
// unless asked).

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Check kinds.
const (
	CheckExec  = "exec"  // a command, exit 0 = up
	CheckShell = "shell" // a command line for /bin/sh -c, exit 0 = up
	CheckTCP   = "tcp"   // a TCP connection to host:port
	CheckHTTP  = "http"  // a GET answered with the expected status (and body)
	CheckFile  = "file"  // a number in a file: 0 = up (keepalived's track_file)
	CheckLink  = "link"  // another interface, up and running (keepalived's track_interface)
)

// Check defaults.
const (
	DefaultCheckInterval = time.Second
	DefaultCheckWeight   = 240
)

// Check is one health check.
type Check struct {
	Name string
	Kind string // CheckExec, ...
	// Target is what is checked: the command (exec: its argv in Argv),
	// the shell line, host:port, the URL, the file.
	Target string
	Argv   []string
	// ExpectStatus is the HTTP status that means up (200); ExpectBody a
	// substring the body must hold ("" = any).
	ExpectStatus int
	ExpectBody   string
	Interval     time.Duration
	Timeout      time.Duration
	// Rise successes in a row make a failing check up again; Fall
	// failures in a row make an up check fail.
	Rise, Fall int
	// Weight is the demotion while the check fails; 0 for a file check
	// without weight: the file's number is the demotion.
	Weight int
	// Release releases the vhids (bow out, stay BACKUP) while failing,
	// instead of demoting.
	Release bool
	// VHIDs are the vhids the check acts on; none: the whole host.
	VHIDs []CheckVHID
	// Origin is "file:line" of the [[check]] table.
	Origin string
}

// Same reports whether c and o are the same check: equal in everything but
// where they are written (Origin). A reload keeps a check that is the same
// running with its state; the runner (internal/checks) and the daemon both
// decide by Same, so that they agree on which checks restart.
func (c Check) Same(o Check) bool {
	return c.Name == o.Name && c.Kind == o.Kind && c.Target == o.Target &&
		slices.Equal(c.Argv, o.Argv) &&
		c.ExpectStatus == o.ExpectStatus && c.ExpectBody == o.ExpectBody &&
		c.Interval == o.Interval && c.Timeout == o.Timeout &&
		c.Rise == o.Rise && c.Fall == o.Fall && c.Weight == o.Weight &&
		c.Release == o.Release && slices.Equal(c.VHIDs, o.VHIDs)
}

// CheckVHID names a vhid a check acts on; Interface "" means every
// interface with that vhid.
type CheckVHID struct {
	VHID      uint8
	Interface string
}

// checkTable is one [[check]] table being read.
type checkTable struct {
	c         Check
	line      int
	keys      map[string]place
	weightSet bool
	actionSet string
	vhidWords []place
}

func (t *tomlParser) newCheck(line int) {
	t.checks = append(t.checks, &checkTable{
		c:    Check{Interval: DefaultCheckInterval, Rise: 1, Fall: 1, ExpectStatus: 200},
		line: line, keys: map[string]place{},
	})
}

var checkKinds = []string{CheckExec, CheckShell, CheckTCP, CheckHTTP, CheckFile, CheckLink}

// checkSetting handles a key of check table e.
func (t *tomlParser) checkSetting(e *checkTable, kv keyValue) {
	c := &e.c
	e.keys[kv.key] = place{kv.line, kv.word}
	switch kv.key {
	case "name":
		if s, ok := t.str(kv, "a name"); ok {
			if s == "" || strings.ContainsAny(s, " \t\n\"{}") {
				t.errorf(kv.line, kv.word, "name must be a word (it labels the metrics)")
				return
			}
			c.Name = s
		}
	case CheckExec:
		switch kv.val.Kind {
		case unstable.String:
			c.Argv = []string{string(kv.val.Data)}
		case unstable.Array:
			it := kv.val.Children()
			for it.Next() {
				n := it.Node()
				if n.Kind != unstable.String {
					t.errorf(kv.line, kv.word, `exec must be a path or a list like ["/usr/local/bin/check", "arg"]`)
					return
				}
				c.Argv = append(c.Argv, string(n.Data))
			}
		default:
			t.errorf(kv.line, kv.word, `exec must be a path or a list like ["/usr/local/bin/check", "arg"]`)
			return
		}
		if len(c.Argv) == 0 || !strings.HasPrefix(c.Argv[0], "/") {
			t.errorf(kv.line, kv.word, "exec must start with an absolute path (no shell: use shell = \"...\" for one)")
			return
		}
		c.Kind, c.Target = CheckExec, strings.Join(c.Argv, " ")
		t.cfg.Files = append(t.cfg.Files, FileRef{Path: c.Argv[0], Key: kv.key, Origin: t.at(kv.line), Program: true})
	case CheckShell, CheckTCP, CheckHTTP, CheckFile, CheckLink:
		s, ok := t.str(kv, "a string")
		if !ok {
			return
		}
		if msg := checkTarget(kv.key, s); msg != "" {
			t.errorf(kv.line, kv.word, "%s", msg)
			return
		}
		c.Kind, c.Target = kv.key, s
	case "expect-status":
		if x, ok := t.integer(kv, [2]int{100, 599}); ok {
			if x < 100 || x > 599 {
				t.errorf(kv.line, kv.word, "expect-status must be 100..599")
				return
			}
			c.ExpectStatus = x
		}
	case "expect-body":
		if s, ok := t.str(kv, "a string"); ok {
			c.ExpectBody = s
		}
	case "interval", "timeout":
		s, ok := t.str(kv, `a duration like "1s"`)
		if !ok {
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.errorf(kv.line, kv.word, `%s must be a positive duration like "1s" or "500ms"`, kv.key)
			return
		}
		if kv.key == "interval" {
			c.Interval = d
		} else {
			c.Timeout = d
		}
	case "rise", "fall":
		x, ok := t.integer(kv, [2]int{1, 100})
		if !ok {
			return
		}
		if x < 1 || x > 100 {
			t.errorf(kv.line, kv.word, "%s must be 1..100", kv.key)
			return
		}
		if kv.key == "rise" {
			c.Rise = x
		} else {
			c.Fall = x
		}
	case "weight":
		x, ok := t.integer(kv, [2]int{1, maxDemotion})
		if !ok {
			return
		}
		if x < 1 || x > maxDemotion {
			t.errorf(kv.line, kv.word, "weight must be 1..%d", maxDemotion)
			return
		}
		c.Weight, e.weightSet = x, true
	case "action":
		s, ok := t.str(kv, "demote or release")
		if !ok {
			return
		}
		switch s {
		case "demote":
		case "release":
			c.Release = true
		default:
			t.errorf(kv.line, kv.word, `action must be "demote" (by weight) or "release"`)
			return
		}
		e.actionSet = s
	case "vhids":
		if kv.val.Kind != unstable.Array {
			t.errorf(kv.line, kv.word, `vhids must be a list like [100, "101@eth1"]`)
			return
		}
		it := kv.val.Children()
		for it.Next() {
			n := it.Node()
			var cv CheckVHID
			var err error
			switch n.Kind {
			case unstable.Integer:
				cv.VHID, err = vhidNumber(string(n.Data))
			case unstable.String:
				num, iface, _ := strings.Cut(string(n.Data), "@")
				cv.VHID, err = vhidNumber(num)
				cv.Interface = iface
			default:
				err = fmt.Errorf("not a vhid")
			}
			if err != nil {
				t.errorf(t.lineOf(n), t.raw(n), `vhids must be vhids 1..255, as 100 or "100@eth0"`)
				continue
			}
			c.VHIDs = append(c.VHIDs, cv)
			e.vhidWords = append(e.vhidWords, place{t.lineOf(n), t.raw(n)})
		}
	default:
		t.errorf(kv.line, kv.key, "unknown key in [[check]]")
	}
}

// maxDemotion is the largest demotion that makes a difference: the
// advertised advskew is clamped to 240.
const maxDemotion = 240

func vhidNumber(s string) (uint8, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 255 {
		return 0, fmt.Errorf("bad vhid")
	}
	return uint8(n), nil
}

// checkTarget checks what a check of kind points at; it returns what is
// wrong, or "".
func checkTarget(kind, s string) string {
	switch kind {
	case CheckShell:
		if strings.TrimSpace(s) == "" {
			return "shell must be a command line"
		}
	case CheckTCP:
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			return `tcp must be HOST:PORT, like "127.0.0.1:5432"`
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return "tcp: the port must be 1..65535"
		}
	case CheckHTTP:
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return `http must be a URL like "http://127.0.0.1:8080/health"`
		}
	case CheckFile:
		if !strings.HasPrefix(s, "/") {
			return "file must be an absolute path"
		}
	case CheckLink:
		if s == "" || len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n") {
			return `link must be an interface name, like "eth1"`
		}
	}
	return ""
}

// finishChecks checks each [[check]] table as a whole and against the
// vhids, and adds the good ones to the configuration.
func (t *tomlParser) finishChecks() {
	names := map[string]int{}
	for _, e := range t.checks {
		c := &e.c
		ok := true
		if _, has := e.keys["name"]; !has {
			t.errorf(e.line, "[[check]]", "name is required")
			ok = false
		} else if first, dup := names[c.Name]; dup {
			p := e.keys["name"]
			t.errorf(p.line, p.word, "check %q is already defined at %s", c.Name, t.at(first))
			ok = false
		} else {
			names[c.Name] = e.line
		}
		var kinds []string
		for _, k := range checkKinds {
			if _, has := e.keys[k]; has {
				kinds = append(kinds, k)
			}
		}
		switch {
		case len(kinds) == 0:
			t.errorf(e.line, "[[check]]", "give one of exec, shell, tcp, http, file or link")
			ok = false
		case len(kinds) > 1:
			p := e.keys[kinds[1]]
			t.errorf(p.line, kinds[1], "give one of exec, shell, tcp, http, file or link, not %s and %s", kinds[0], kinds[1])
			ok = false
		}
		if c.Release && e.weightSet {
			p := e.keys["weight"]
			t.errorf(p.line, p.word, `weight is for action = "demote"; a released vhid needs none`)
			ok = false
		}
		if !c.Release && !e.weightSet && c.Kind != CheckFile {
			c.Weight = DefaultCheckWeight
		}
		if c.Kind != CheckHTTP {
			for _, k := range []string{"expect-status", "expect-body"} {
				if p, has := e.keys[k]; has {
					t.errorf(p.line, k, "%s is for http checks", k)
					ok = false
				}
			}
		}
		if c.Timeout == 0 {
			c.Timeout = c.Interval
		}
		for i, cv := range c.VHIDs {
			if !t.hasVHID(cv) {
				p := e.vhidWords[i]
				where := ""
				if cv.Interface != "" {
					where = " on " + cv.Interface
				}
				t.errorf(p.line, p.word, "no vhid %d%s is configured", cv.VHID, where)
				ok = false
			}
		}
		if ok {
			c.Origin = t.at(e.line)
			t.cfg.Checks = append(t.cfg.Checks, *c)
		}
	}
}

// hasVHID reports whether some [[vhid]] table is cv.
func (t *tomlParser) hasVHID(cv CheckVHID) bool {
	for _, e := range t.tables {
		if e.spec.vhid.set && e.spec.vhid.val == int(cv.VHID) && (cv.Interface == "" || e.spec.iface == cv.Interface) {
			return true
		}
	}
	return false
}

// Matches reports whether the check acts on vhid n on iface.
func (c *Check) Matches(n uint8, iface string) bool {
	if len(c.VHIDs) == 0 {
		return true
	}
	for _, cv := range c.VHIDs {
		if cv.VHID == n && (cv.Interface == "" || cv.Interface == iface) {
			return true
		}
	}
	return false
}
