package vrrp

import (
	"bufio"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/*.txt")

// TestScenarios runs the scripts in testdata/*.txt, as internal/carp's:
// each block is a command, a line "----", the expected output and a blank
// line (etcd-io/raft's datadriven tests); `go test -rewrite` regenerates
// the expected output. Times are printed since the start of the script,
// exactly (time.Duration's String).
//
// Commands:
//
//	config vrid=N prio=N interval=CS addrs=A,B primary=A preempt tiebreak
//	       preempt-delay=DURATION ifdown=N senderr=N
//	reconfigure ...     the same keys: Machine.Reconfigure (a reload)
//	link up [again]|down
//	advance DURATION    move the clock, ticking at every deadline on the way
//	recv prio=N [interval=CS vrid=N ttl=N src=A raw]
//	                    an advert from src (default 192.0.2.254 or
//	                    fe80::254), through the codec unless raw
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

type scenarioBlock struct {
	pre  string // comment lines before the command, kept by -rewrite
	line int
	cmd  string
	want string
}

func readScenario(t *testing.T, file string) (blocks []scenarioBlock) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	var cur *scenarioBlock
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
			cur = &scenarioBlock{pre: pre.String(), line: n, cmd: line}
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
	blocks := readScenario(t, file)
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

func scenarioArgs(args []string) (map[string]string, []string) {
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

func argNum(m map[string]string, k string, def int) (int, error) {
	v, ok := m[k]
	if !ok {
		return def, nil
	}
	return strconv.Atoi(v)
}

func (s *scenario) config(args map[string]string, bare []string) (Config, error) {
	c := Config{Preempt: slices.Contains(bare, "preempt"), TieBreak: slices.Contains(bare, "tiebreak")}
	var n [3]int
	for i, k := range []string{"vrid", "prio", "interval"} {
		var err error
		if n[i], err = argNum(args, k, []int{1, DefaultPriority, DefaultInterval}[i]); err != nil {
			return c, err
		}
	}
	c.VRID, c.Priority, c.Interval = uint8(n[0]), uint8(n[1]), uint16(n[2])
	for _, a := range strings.Split(args["addrs"], ",") {
		addr, err := netip.ParseAddr(a)
		if err != nil {
			return c, err
		}
		c.Addrs = append(c.Addrs, addr)
	}
	var err error
	if v, ok := args["primary"]; ok {
		if c.PrimaryIP, err = netip.ParseAddr(v); err != nil {
			return c, err
		}
	}
	if v, ok := args["preempt-delay"]; ok {
		if c.PreemptDelay, err = time.ParseDuration(v); err != nil {
			return c, err
		}
	}
	if c.IfDownDemotion, err = argNum(args, "ifdown", 0); err != nil {
		return c, err
	}
	if c.SendErrDemotion, err = argNum(args, "senderr", 0); err != nil {
		return c, err
	}
	return c, nil
}

func (s *scenario) run(cmd string) (string, error) {
	f := strings.Fields(cmd)
	args, bare := scenarioArgs(f[1:])
	switch f[0] {
	case "config", "reconfigure":
		c, err := s.config(args, bare)
		if err != nil {
			return "", err
		}
		if f[0] == "reconfigure" {
			acts, err := s.m.Reconfigure(s.now, c)
			if err != nil {
				return "error: " + err.Error() + "\n", nil
			}
			s.cfg = c
			return s.print(acts), nil
		}
		m, err := NewMachine(c)
		if err != nil {
			return "error: " + err.Error() + "\n", nil
		}
		s.m, s.cfg = m, c
		return "", nil
	case "link":
		if len(bare) == 1 && bare[0] == "down" {
			return s.step(LinkDown{}), nil
		}
		return s.step(LinkUp{Again: slices.Contains(bare, "again")}), nil
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
		return s.recv(args, bare)
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
			next = "t=" + d.Sub(s.start).String()
		}
		left := ""
		if s.m.Left() {
			left = " left"
		}
		return fmt.Sprintf("%s prio=%d mai=%d skew=%s down=%s next=%s%s\n", s.m.State(), s.m.Priority(),
			s.m.MasterAdverInterval(), s.m.SkewTime(), s.m.MasterDownInterval(), next, left), nil
	}
	return "", fmt.Errorf("unknown command %q", f[0])
}

func (s *scenario) recv(args map[string]string, bare []string) (string, error) {
	var n [4]int
	for i, k := range []string{"vrid", "prio", "interval", "ttl"} {
		var err error
		if n[i], err = argNum(args, k, []int{int(s.cfg.VRID), DefaultPriority, DefaultInterval, TTL}[i]); err != nil {
			return "", err
		}
	}
	a := Advert{VRID: uint8(n[0]), Priority: uint8(n[1]), Interval: uint16(n[2]), Addrs: s.cfg.Addrs}
	src, dst := netip.MustParseAddr("192.0.2.254"), GroupIPv4
	if s.m.IPv6() {
		src, dst = netip.MustParseAddr("fe80::254"), GroupIPv6
	}
	if v, ok := args["src"]; ok {
		var err error
		if src, err = netip.ParseAddr(v); err != nil {
			return "", err
		}
	}
	if !slices.Contains(bare, "raw") {
		// Through the codec, as the daemon does.
		b, err := a.Marshal(src, dst)
		if err != nil {
			return "", err
		}
		if a, err = Parse(b, src, dst); err != nil {
			return "", err
		}
	}
	return s.step(Received{Src: src, TTL: n[3], Advert: a}), nil
}

func (s *scenario) step(ev Event) string {
	return s.print(s.m.Step(s.now, ev))
}

func (s *scenario) print(acts []Action) string {
	var out strings.Builder
	at := "t=" + s.now.Sub(s.start).String()
	for _, a := range acts {
		switch a := a.(type) {
		case Transition:
			fmt.Fprintf(&out, "%s %s -> %s (%s)\n", at, a.From, a.To, a.Reason)
		case SendAdvert:
			fmt.Fprintf(&out, "%s send vrid=%d prio=%d interval=%d addrs=%s\n", at, a.Advert.VRID, a.Advert.Priority,
				a.Advert.Interval, joinAddrs(a.Advert.Addrs))
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
		default:
			fmt.Fprintf(&out, "%s unknown action %T\n", at, a)
		}
	}
	return out.String()
}

func joinAddrs(as []netip.Addr) string {
	ss := make([]string, len(as))
	for i, a := range as {
		ss[i] = a.String()
	}
	return strings.Join(ss, ",")
}
