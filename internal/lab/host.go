package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"github.com/vishvananda/netns"
)

// Host is one machine on the lab's segment: a namespace with lo and eth0.
type Host struct {
	Name  string           // host name, also the switch port's name
	NS    string           // network namespace name (ip netns)
	Iface string           // the host's interface: always "eth0"
	Port  string           // the switch-side veth in Lab.Switch
	MAC   net.HardwareAddr // eth0's hardware address

	lab *Lab
}

// Run runs args inside the host's namespace (`ip netns exec NS args...`) and
// returns its combined output; on failure the error carries the output too.
func (h *Host) Run(ctx context.Context, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("lab: Run: no command")
	}
	out, err := run(ctx, "ip", append([]string{"netns", "exec", h.NS}, args...)...)
	if err != nil {
		return out, fmt.Errorf("lab: %s: %v: %w", h.Name, args, err)
	}
	return out, nil
}

// Start starts args in the background inside the host's namespace. Its
// stdout and stderr go to the Proc's buffer. The process gets its own
// process group and is killed (SIGKILL) if this process dies (strictly:
// when the OS thread that started it exits, which Go threads do only in
// the rare case of Do failing to switch back); Lab.Close kills it. name
// labels the process in errors.
func (h *Host) Start(name string, args ...string) (*Proc, error) {
	if len(args) == 0 {
		return nil, errors.New("lab: Start: no command")
	}
	// ip netns exec execs the command, so the PID is the command's own.
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.NS}, args...)...)
	p := newProc(name, cmd)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Register before starting, so that a concurrent Close either refuses
	// the start or sees the process.
	if err := h.lab.addProc(p); err != nil {
		return nil, err
	}
	if err := p.start(); err != nil {
		return nil, fmt.Errorf("lab: %s: start %s: %w", h.Name, name, err)
	}
	return p, nil
}

// PortDown sets the switch-side end of the host's cable down: the host's
// eth0 loses carrier (NO-CARRIER) but stays administratively up.
func (h *Host) PortDown() error { return h.lab.ip(h.lab.Switch, "link", "set", "dev", h.Port, "down") }

// PortUp sets the switch-side end of the host's cable up again.
func (h *Host) PortUp() error { return h.lab.ip(h.lab.Switch, "link", "set", "dev", h.Port, "up") }

// LinkDown sets the host's own eth0 down.
func (h *Host) LinkDown() error { return h.lab.ip(h.NS, "link", "set", "dev", h.Iface, "down") }

// LinkUp sets the host's own eth0 up.
func (h *Host) LinkUp() error { return h.lab.ip(h.NS, "link", "set", "dev", h.Iface, "up") }

// AddAddr adds p to eth0.
func (h *Host) AddAddr(p netip.Prefix) error {
	return h.lab.ip(h.NS, "addr", "add", p.String(), "dev", h.Iface)
}

// DelAddr removes p from eth0.
func (h *Host) DelAddr(p netip.Prefix) error {
	return h.lab.ip(h.NS, "addr", "del", p.String(), "dev", h.Iface)
}

// FlushAddrs removes every address from eth0, IPv6 link-local included
// (the kernel makes a new link-local address when the link next comes up).
func (h *Host) FlushAddrs() error {
	return h.lab.ip(h.NS, "addr", "flush", "dev", h.Iface)
}

// ipAddr is the part of `ip -j addr show` the lab reads.
type ipAddr struct {
	Address  string `json:"address"` // link-layer address
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

func (h *Host) showAddr(iface string) (ipAddr, error) {
	out, err := ipOut(h.NS, "-j", "addr", "show", "dev", iface)
	if err != nil {
		return ipAddr{}, err
	}
	var links []ipAddr
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return ipAddr{}, fmt.Errorf("lab: %s: parse ip -j addr: %w", h.Name, err)
	}
	if len(links) != 1 {
		return ipAddr{}, fmt.Errorf("lab: %s: ip -j addr show dev %s: %d links", h.Name, iface, len(links))
	}
	return links[0], nil
}

// Addrs returns the addresses eth0 holds, with their prefix lengths.
func (h *Host) Addrs() ([]netip.Prefix, error) { return h.AddrsOn(h.Iface) }

// Holds reports whether eth0 holds address a (any prefix length).
func (h *Host) Holds(a netip.Addr) (bool, error) { return h.HoldsOn(h.Iface, a) }

func (h *Host) readMAC() (net.HardwareAddr, error) {
	link, err := h.showAddr(h.Iface)
	if err != nil {
		return nil, err
	}
	mac, err := net.ParseMAC(link.Address)
	if err != nil {
		return nil, fmt.Errorf("lab: %s: MAC %q: %w", h.Name, link.Address, err)
	}
	return mac, nil
}

// Neigh returns the host's neighbour (ARP/NDP) entry for a on eth0: its
// hardware address and state as ip(8) names it ("REACHABLE", "STALE",
// several joined by "," as in "REACHABLE,PERMANENT"). With no entry it
// returns nil, "" and no error; an INCOMPLETE or FAILED entry has a nil MAC.
func (h *Host) Neigh(a netip.Addr) (net.HardwareAddr, string, error) {
	out, err := ipOut(h.NS, "-j", "neigh", "show", "to", a.String(), "dev", h.Iface)
	if err != nil {
		return nil, "", err
	}
	var entries []struct {
		Dst    string   `json:"dst"`
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		return nil, "", fmt.Errorf("lab: %s: parse ip -j neigh: %w", h.Name, err)
	}
	for _, e := range entries {
		if d, err := netip.ParseAddr(e.Dst); err != nil || d != a {
			continue
		}
		state := strings.Join(e.State, ",")
		if e.LLAddr == "" {
			return nil, state, nil
		}
		mac, err := net.ParseMAC(e.LLAddr)
		if err != nil {
			return nil, state, fmt.Errorf("lab: %s: neighbour %s lladdr %q: %w", h.Name, a, e.LLAddr, err)
		}
		return mac, state, nil
	}
	return nil, "", nil
}

// Do runs f on an OS thread switched into the host's namespace and returns
// its error. Sockets f opens belong to the namespace for their whole life,
// wherever they are used later. f runs on its own goroutine; goroutines it
// starts do not run in the namespace. If the thread cannot be switched back
// it is left locked, so the runtime discards it when f's goroutine ends.
func (h *Host) Do(f func() error) error {
	return do(h.NS, f)
}

func do(ns string, f func() error) error {
	target, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("lab: open namespace %s: %w", ns, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: enter namespace %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the thread dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("lab: leave namespace %s: %w", ns, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
