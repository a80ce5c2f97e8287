package carp

import (
	"bufio"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/*.txt")

// TestScenarios runs the scripts in testdata/. Each block is a command, a
// line "----", the expected output and a blank line, as in etcd-io/raft's
// datadriven tests; `go test -rewrite` regenerates the expected output.
//
// Commands:
//
//	config vhid=N advbase=N advskew=N pass=P addrs=A,B preempt peer=A peer6=A counter=N
//	       preempt-delay=DURATION ifdown=N senderr=N src4=A src6=A
//	reconfigure ...     the same keys: Machine.Reconfigure (a reload)
//	link up|down
//	advance DURATION [late=D]  move the clock, ticking at every deadline on the
//	                    way (late: each tick D after its deadline)
//	recv [v4|v6] advbase=N advskew=N [vhid=N ttl=N pass=P counter=N demote=N src=A self]
//	force master|backup
//	demote N
//	shutdown
//	release on|off      a failing check's release
//	send error|ok       the result of the last advert sent
//	state
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScenario(t, file)
		})
	}
}

type block struct {
	pre  string // comment lines before the command, kept by -rewrite
	line int
	cmd  string
	want string
}

func readBlocks(t *testing.T, file string) (blocks []block) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	var cur *block
	inWant := false
	var pre strings.Builder
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "#"):
			pre.WriteString(line + "\n")
		case cur == nil && strings.TrimSpace(line) == "":
		case cur == nil:
			cur = &block{pre: pre.String(), line: n, cmd: line}
			pre.Reset()
		case !inWant && line == "----":
			inWant = true
		case !inWant:
			t.Fatalf("%s:%d: expected ---- after the command", file, n)
		case line == "":
			blocks = append(blocks, *cur)
			cur, inWant = nil, false
		default:
			cur.want += line + "\n"
		}
	}
	if cur != nil {
		blocks = append(blocks, *cur)
	}
	return blocks
}

func runScenario(t *testing.T, file string) {
	blocks := readBlocks(t, file)
	s := &scenario{start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.now = s.start
	var rewritten strings.Builder
	for _, b := range blocks {
		got, err := s.run(b.cmd)
		if err != nil {
			t.Fatalf("%s:%d: %s: %v", file, b.line, b.cmd, err)
		}
		if got == "" {
			got = "ok\n"
		}
		if *rewrite {
			fmt.Fprintf(&rewritten, "%s%s\n----\n%s\n", b.pre, b.cmd, got)
			continue
		}
		if got != b.want {
			t.Errorf("%s:%d: %s\nwant:\n%sgot:\n%s", file, b.line, b.cmd, b.want, got)
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(strings.TrimSuffix(rewritten.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type scenario struct {
	start, now time.Time
	m          *Machine
	cfg        Config
}

func kv(args []string) (map[string]string, []string) {
	m := map[string]string{}
	var bare []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			m[k] = v
		} else {
			bare = append(bare, a)
		}
	}
	return m, bare
}

func num(m map[string]string, k string, def int) (int, error) {
	v, ok := m[k]
	if !ok {
		return def, nil
	}
	if strings.HasPrefix(v, "0x") {
		n, err := strconv.ParseUint(v[2:], 16, 64)
		return int(n), err
	}
	return strconv.Atoi(v)
}

func (s *scenario) run(cmd string) (string, error) {
	f := strings.Fields(cmd)
	args, bare := kv(f[1:])
	switch f[0] {
	case "config", "reconfigure":
		c := Config{Password: args["pass"], Preempt: contains(bare, "preempt"), ReplayProtection: contains(bare, "replay-protection")}
		for k, p := range map[string]*netip.Addr{"peer": &c.Peer4, "peer6": &c.Peer6, "src4": &c.Source4, "src6": &c.Source6} {
			if v, ok := args[k]; ok {
				a, err := netip.ParseAddr(v)
				if err != nil {
					return "", err
				}
				*p = a
			}
		}
		vals := map[string]*uint8{"vhid": &c.VHID, "advbase": &c.AdvBase, "advskew": &c.AdvSkew}
		defs := map[string]int{"vhid": 1, "advbase": 1, "advskew": 0}
		for k, p := range vals {
			n, err := num(args, k, defs[k])
			if err != nil {
				return "", err
			}
			*p = uint8(n)
		}
		for _, a := range strings.Split(args["addrs"], ",") {
			addr, err := netip.ParseAddr(a)
			if err != nil {
				return "", err
			}
			c.Addrs = append(c.Addrs, addr)
		}
		counter, err := num(args, "counter", 0)
		if err != nil {
			return "", err
		}
		if v, ok := args["preempt-delay"]; ok {
			if c.PreemptDelay, err = time.ParseDuration(v); err != nil {
				return "", err
			}
		}
		if c.IfDownDemotion, err = num(args, "ifdown", 0); err != nil {
			return "", err
		}
		if c.SendErrDemotion, err = num(args, "senderr", 0); err != nil {
			return "", err
		}
		if f[0] == "reconfigure" {
			acts, err := s.m.Reconfigure(s.now, c)
			if err != nil {
				return "error: " + err.Error() + "\n", nil
			}
			s.cfg = c
			return s.print(acts, nil), nil
		}
		m, err := NewMachine(c, uint64(counter))
		if err != nil {
			return "error: " + err.Error() + "\n", nil
		}
		s.m, s.cfg = m, c
		return "", nil
	case "link":
		if len(bare) == 1 && bare[0] == "down" {
			return s.step(LinkDown{}), nil
		}
		again := len(bare) > 1 && bare[1] == "again"
		return s.step(LinkUp{Again: again}), nil
	case "advance":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			return "", err
		}
		// late=D: each tick comes D after its deadline, as from a
		// loop running behind.
		var late time.Duration
		if v, ok := args["late"]; ok {
			if late, err = time.ParseDuration(v); err != nil {
				return "", err
			}
		}
		end := s.now.Add(d)
		var out strings.Builder
		for {
			next := s.m.NextDeadline()
			if next.IsZero() || next.Add(late).After(end) {
				break
			}
			s.now = next.Add(late)
			out.WriteString(s.step(Tick{}))
		}
		s.now = end
		return out.String(), nil
	case "recv":
		fam := IPv4
		if contains(bare, "v6") {
			fam = IPv6
		}
		a := Advert{}
		var err error
		fields := map[string]*uint8{"vhid": &a.VHID, "advbase": &a.AdvBase, "advskew": &a.AdvSkew, "demote": &a.Demote}
		defs := map[string]int{"vhid": int(s.cfg.VHID), "advbase": 1, "advskew": 0, "demote": 0}
		for k, p := range fields {
			n, err := num(args, k, defs[k])
			if err != nil {
				return "", err
			}
			*p = uint8(n)
		}
		counter, err := num(args, "counter", 1000)
		if err != nil {
			return "", err
		}
		a.Counter = uint64(counter)
		pass := s.cfg.Password
		if p, ok := args["pass"]; ok {
			pass = p
		}
		a.Digest = NewAuthenticator(pass, a.VHID, s.cfg.Addrs).Digest(a.Counter)
		ttl, err := num(args, "ttl", 255)
		if err != nil {
			return "", err
		}
		// Through the codec, as the daemon does.
		parsed, err := ParseAdvert(a.Marshal())
		if err != nil {
			return "", err
		}
		src := netip.MustParseAddr("192.0.2.254")
		if fam == IPv6 {
			src = netip.MustParseAddr("fe80::254")
		}
		if v, ok := args["src"]; ok {
			if src, err = netip.ParseAddr(v); err != nil {
				return "", err
			}
		}
		return s.step(Received{Family: fam, Src: src, TTL: ttl, Advert: parsed, Self: contains(bare, "self")}), nil
	case "force":
		st := Backup
		if bare[0] == "master" {
			st = Master
		}
		return s.step(Force{State: st}), nil
	case "demote":
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return "", err
		}
		return s.step(SetDemotion{Demotion: n}), nil
	case "shutdown":
		return s.step(Shutdown{}), nil
	case "release":
		return s.step(Release{On: bare[0] == "on"}), nil
	case "send":
		return s.step(SendResult{Err: bare[0] == "error"}), nil
	case "state":
		next := "none"
		if d := s.m.NextDeadline(); !d.IsZero() {
			next = fmt.Sprintf("t=%.3f", d.Sub(s.start).Seconds())
		}
		left := ""
		if s.m.Left() {
			left = " left"
		}
		return fmt.Sprintf("%s advskew=%d next=%s%s\n", s.m.State(), s.m.AdvSkew(), next, left), nil
	}
	return "", fmt.Errorf("unknown command %q", f[0])
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (s *scenario) step(ev Event) string {
	return s.print(s.m.Step(s.now, ev), ev)
}

func (s *scenario) print(acts []Action, ev Event) string {
	var out strings.Builder
	at := fmt.Sprintf("t=%.3f", s.now.Sub(s.start).Seconds())
	for _, a := range acts {
		switch a := a.(type) {
		case Transition:
			fmt.Fprintf(&out, "%s %s -> %s (%s)\n", at, a.From, a.To, a.Reason)
		case SendAdvert:
			fmt.Fprintf(&out, "%s send %s advbase=%d advskew=%d counter=%d\n", at, a.Family, a.Advert.AdvBase, a.Advert.AdvSkew, a.Advert.Counter)
		case HoldAddresses:
			if a.Hold {
				fmt.Fprintf(&out, "%s hold addresses\n", at)
			} else {
				fmt.Fprintf(&out, "%s release addresses\n", at)
			}
		case Announce:
			fmt.Fprintf(&out, "%s announce\n", at)
		case Drop:
			fmt.Fprintf(&out, "%s drop %s\n", at, a.Reason)
		case Demote:
			fmt.Fprintf(&out, "%s demote %+d (%s)\n", at, a.Delta, a.Reason)
		}
	}
	return out.String()
}
