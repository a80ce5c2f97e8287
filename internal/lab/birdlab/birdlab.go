// Package birdlab runs bird2, a real BGP speaker, in a lab host's network
// namespace for tests: the router that carpd's bgp mover peers with. bird
// installs what it learns in that namespace's kernel table, so traffic
// from a client behind it follows the routes; its RIB is read with birdc
// through bird's own control socket. A missing bird fails the test under
// CI (labtest.Tool).
package birdlab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/lab/labtest"
)

// Neighbor is one BGP session of the router.
type Neighbor struct {
	// Name names bird's protocol (a letter first).
	Name string
	// Local is the router's address of the session, Addr the peer's.
	Local, Addr netip.Addr
	LocalAS, AS uint32
	// Password is the TCP MD5 key; "" for none.
	Password string
}

// Bird is a running bird.
type Bird struct {
	t     testing.TB
	birdc string
	sock  string
	proc  *lab.Proc
}

// Start starts bird on h with router id id, importing every route its
// neighbors announce and exporting none to them; the lab stops it.
func Start(t testing.TB, h *lab.Host, id netip.Addr, ns []Neighbor) *Bird {
	t.Helper()
	bird := labtest.Tool(t, "bird")
	b := &Bird{t: t, birdc: labtest.Tool(t, "birdc")}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	b.sock = filepath.Join(dir, "bird.ctl")
	if err := os.WriteFile(conf, []byte(Config(id, ns)), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := h.Start("bird", bird, "-f", "-c", conf, "-s", b.sock, "-P", filepath.Join(dir, "bird.pid"))
	if err != nil {
		t.Fatal(err)
	}
	b.proc = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := b.Ctl("show", "status"); err == nil {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("bird did not come up: %s", p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Config is bird's configuration for router id id and neighbors ns.
func Config(id netip.Addr, ns []Neighbor) string {
	var s strings.Builder
	// The route changes of the neighbors' imports are logged (debug):
	// Changes reads them, in bird's order.
	fmt.Fprintf(&s, "router id %v;\nlog stderr all;\n", id)
	s.WriteString("protocol device { scan time 10; }\n")
	s.WriteString("protocol kernel { ipv4 { import none; export all; }; }\n")
	s.WriteString("protocol kernel { ipv6 { import none; export all; }; }\n")
	for _, n := range ns {
		password := ""
		if n.Password != "" {
			password = fmt.Sprintf("password %q;", n.Password)
		}
		family := "ipv4"
		if n.Addr.Is6() {
			family = "ipv6"
		}
		fmt.Fprintf(&s, `protocol bgp %s {
	local %v as %d;
	neighbor %v as %d;
	connect retry time 1;
	error wait time 1, 2;
	debug { routes };
	%s
	%s { import all; export none; };
}
`, n.Name, n.Local, n.LocalAS, n.Addr, n.AS, password, family)
	}
	return s.String()
}

// Ctl runs birdc on bird's control socket.
func (b *Bird) Ctl(args ...string) (string, error) {
	out, err := exec.Command(b.birdc, append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Paths returns the next hops of the router's paths for the host route of
// a, as `birdc show route` lists them (one "via" line per path).
func (b *Bird) Paths(a netip.Addr) ([]string, error) {
	out, err := b.Ctl("show", "route", netip.PrefixFrom(a, a.BitLen()).String())
	if strings.Contains(out, "Network not found") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var hops []string
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "via" {
			hops = append(hops, f[1])
		}
	}
	return hops, nil
}

// WaitPaths waits until the router has exactly the paths for a through
// hops (none when empty), and returns how long that took; the test fails
// after timeout.
func (b *Bird) WaitPaths(a netip.Addr, timeout time.Duration, hops ...string) time.Duration {
	b.t.Helper()
	start := time.Now()
	for {
		got, err := b.Paths(a)
		if err != nil {
			b.t.Fatal(err)
		}
		if slices.Equal(got, hops) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			out, _ := b.Ctl("show", "protocols", "all")
			b.t.Fatalf("router's paths for %v: %v after %v, want %v\n%s", a, got, timeout, hops, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitEstablished waits until bird's session name is established.
func (b *Bird) WaitEstablished(ctx context.Context, name string) error {
	for {
		out, err := b.Ctl("show", "protocols", name)
		if err == nil && strings.Contains(out, "Established") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bgp session %s: not established: %w\n%s", name, ctx.Err(), out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Sampler reads the router's paths for an address as fast as birdc
// answers, until Stop.
type Sampler struct {
	stop chan struct{}
	done chan struct{}
	// Samples are the paths read, in order, with their time; valid after
	// Stop.
	Samples []Sample
	Err     error
}

// Sample is one read of the router's paths.
type Sample struct {
	At   time.Time
	Hops []string
}

// Sample starts sampling a's paths.
func (b *Bird) Sample(a netip.Addr) *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			at := time.Now()
			hops, err := b.Paths(a)
			if err != nil {
				s.Err = err
				return
			}
			s.Samples = append(s.Samples, Sample{At: at, Hops: hops})
		}
	}()
	return s
}

// Stop ends the sampling; calling it again does nothing.
func (s *Sampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// Output is what bird wrote so far (its log).
func (b *Bird) Output() string { return b.proc.Output() }

// PathChange is one change of the router's paths for a prefix, as bird
// logs it: the path through a neighbor added or removed.
type PathChange struct {
	// At is bird's time stamp.
	At       string
	Neighbor string
	Added    bool
}

// PathChanges returns the changes of the paths for prefix p so far, in
// bird's order: every change, where sampling the RIB with birdc can miss
// one that lasts less than a sample.
func (b *Bird) PathChanges(p netip.Prefix) []PathChange {
	var out []PathChange
	for l := range strings.Lines(b.Output()) {
		// 2026-12-07 04:13:18.162 <TRACE> h1.ipv4 > added [best] 203.0.113.50/32 0L 4G unicast
		f := strings.Fields(l)
		if len(f) < 7 || f[2] != "<TRACE>" || f[4] != ">" {
			continue
		}
		i := 6
		if strings.HasPrefix(f[i], "[") {
			i++
		}
		if i >= len(f) || f[i] != p.String() || (f[5] != "added" && f[5] != "removed") {
			continue
		}
		name, _, _ := strings.Cut(f[3], ".")
		out = append(out, PathChange{At: f[0] + " " + f[1], Neighbor: name, Added: f[5] == "added"})
	}
	return out
}
