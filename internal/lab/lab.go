// Package lab builds throw-away network topologies in Linux network
// namespaces for tests and for the `carpd demo` walkthrough.
//
// A Lab is one Ethernet segment: a "switch" namespace holding a bridge br0,
// and any number of hosts. Each host is a namespace with a loopback and one
// interface eth0, a veth whose other end sits in the switch namespace,
// enslaved to br0 and named after the host. Unplugging a host's cable is
// Host.PortDown; its own interface going down is Host.LinkDown.
//
// The lab shells out to ip(8) from iproute2, as an operator would. Every
// namespace name is unique per Lab ("<prefix>-<6 hex>-<host>"), and Close
// kills every process started through the lab and deletes every namespace it
// made. Nothing is created in the caller's own namespace. Building a lab
// needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN).
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"time"
)

// Iface is the name of every host's interface on the segment.
const Iface = "eth0"

// Bridge is the name of the bridge in the switch namespace.
const Bridge = "br0"

// cmdTimeout bounds every ip(8) command the lab runs itself.
const cmdTimeout = 15 * time.Second

// hostName restricts host names so that they are valid interface names in
// the switch namespace (IFNAMSIZ-1 = 15 bytes) and safe in namespace names.
var hostName = regexp.MustCompile(`^[a-z][a-z0-9]{0,14}$`)

// prefixName restricts the prefix of namespace names.
var prefixName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Lab is one Ethernet segment built in network namespaces. Its methods are
// safe for concurrent use.
type Lab struct {
	// ID is the random part shared by all of this lab's namespace names.
	ID string
	// Switch is the name of the switch namespace, which holds br0 and the
	// switch-side end of every host's veth.
	Switch string

	prefix string

	mu         sync.Mutex
	closed     bool
	namespaces []string // created, in creation order
	hosts      map[string]*Host
	procs      []*Proc
}

// New creates the switch namespace with its bridge. Namespace names are
// "<prefix>-<6 random hex>-<host>" (the switch is "<prefix>-<hex>-sw").
// The caller must call Close, also when a later step fails.
func New(prefix string) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: needs root to create network namespaces")
	}
	if !prefixName.MatchString(prefix) {
		return nil, fmt.Errorf("lab: bad prefix %q", prefix)
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("lab: random id: %w", err)
	}
	l := &Lab{
		ID:     hex.EncodeToString(b[:]),
		prefix: prefix,
		hosts:  make(map[string]*Host),
	}
	l.Switch = l.nsName("sw")
	// The namespaces of this prefix's labs whose process was killed
	// before their Close (see OwnerDir); best effort.
	_ = sweep(prefix)
	if err := l.mark(); err != nil {
		return nil, fmt.Errorf("lab: owner marker: %w", err)
	}
	if err := l.addNS(l.Switch); err != nil {
		_ = os.Remove(l.markerPath())
		return nil, err
	}
	// The switch takes no part in IPv6: no link-local addresses, no router
	// solicitations, no MLD reports of its own.
	_ = l.sysctl(l.Switch, "net/ipv6/conf/all/disable_ipv6", "1")
	_ = l.sysctl(l.Switch, "net/ipv6/conf/default/disable_ipv6", "1")
	// Snooping off: the bridge floods all multicast (224.0.0.18, ff02::12)
	// like a plain switch, whatever MLD/IGMP reports it has seen.
	steps := [][]string{
		{"link", "add", Bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"},
		{"link", "set", "dev", Bridge, "up"},
		{"link", "set", "dev", "lo", "up"},
	}
	for _, s := range steps {
		if err := l.ip(l.Switch, s...); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

func (l *Lab) nsName(host string) string {
	return l.prefix + "-" + l.ID + "-" + host
}

// addNS creates a namespace and records it for Close.
func (l *Lab) addNS(ns string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("lab: closed")
	}
	if _, err := run(context.Background(), "ip", "netns", "add", ns); err != nil {
		return fmt.Errorf("lab: create namespace %s: %w", ns, err)
	}
	l.namespaces = append(l.namespaces, ns)
	return nil
}

// ip runs `ip -n ns args...`.
func (l *Lab) ip(ns string, args ...string) error {
	_, err := ipOut(ns, args...)
	return err
}

func ipOut(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := run(ctx, "ip", append([]string{"-n", ns}, args...)...)
	if err != nil {
		return out, fmt.Errorf("lab: ip -n %s %v: %w", ns, args, err)
	}
	return out, nil
}

// run runs a command and returns its combined output; a failure's error
// carries the output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, bytes.TrimSpace(out.Bytes()))
	}
	return out.String(), nil
}

// sysctl writes value to /proc/sys/<key> inside namespace ns.
func (l *Lab) sysctl(ns, key, value string) error {
	return do(ns, func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
	})
}

// AddHost creates host namespace "<prefix>-<id>-<name>" with lo up and eth0
// up, cabled to br0 through switch port <name>, with IPv6 duplicate address
// detection off, and assigns addrs to eth0. The name must be a lowercase
// letter followed by up to 14 lowercase letters or digits, unique in the lab
// ("sw" is taken).
func (l *Lab) AddHost(name string, addrs ...netip.Prefix) (*Host, error) {
	return l.AddHostOn(Bridge, name, addrs...)
}

// AddHostOn is AddHost with the host's eth0 cabled to segment, a bridge made
// by AddSegment (or Bridge, which makes it AddHost), rather than to br0: a
// host that lives on another segment only, such as a host behind a router.
func (l *Lab) AddHostOn(segment, name string, addrs ...netip.Prefix) (*Host, error) {
	if !hostName.MatchString(name) || name == "sw" || name == Bridge {
		return nil, fmt.Errorf("lab: bad host name %q", name)
	}
	l.mu.Lock()
	_, dup := l.hosts[name]
	l.mu.Unlock()
	if dup {
		return nil, fmt.Errorf("lab: host %q exists", name)
	}
	h := &Host{Name: name, NS: l.nsName(name), Iface: Iface, Port: name, lab: l}
	if err := l.addNS(h.NS); err != nil {
		return nil, err
	}
	if err := l.ip(l.Switch, "link", "add", "name", name, "type", "veth", "peer", "name", Iface, "netns", h.NS); err != nil {
		return nil, err
	}
	for _, s := range [][]string{
		{"link", "set", "dev", name, "master", segment},
		{"link", "set", "dev", name, "up"},
	} {
		if err := l.ip(l.Switch, s...); err != nil {
			return nil, err
		}
	}
	// DAD off before the link comes up, so that link-local and any later
	// IPv6 address are usable at once.
	if err := l.sysctl(h.NS, "net/ipv6/conf/"+Iface+"/accept_dad", "0"); err != nil {
		return nil, fmt.Errorf("lab: host %s: accept_dad: %w", name, err)
	}
	for _, s := range [][]string{
		{"link", "set", "dev", "lo", "up"},
		{"link", "set", "dev", Iface, "up"},
	} {
		if err := l.ip(h.NS, s...); err != nil {
			return nil, err
		}
	}
	for _, a := range addrs {
		if err := h.AddAddr(a); err != nil {
			return nil, err
		}
	}
	mac, err := h.readMAC()
	if err != nil {
		return nil, err
	}
	h.MAC = mac
	l.mu.Lock()
	l.hosts[name] = h
	l.mu.Unlock()
	return h, nil
}

// Host returns the host of that name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[name]
}

// Close kills every process started through the lab (SIGKILL to its process
// group, then waits for it) and deletes every namespace the lab made. It is
// idempotent and safe to call after a failed New or AddHost; it returns the
// errors it met but always does all it can.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := l.procs
	namespaces := l.namespaces
	l.procs, l.namespaces = nil, nil
	l.mu.Unlock()

	var errs []error
	for _, p := range procs {
		if err := p.kill(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	// Hosts first, the switch last: deleting a host namespace destroys its
	// veth pair, and the bridge goes with the switch namespace.
	for i := len(namespaces) - 1; i >= 0; i-- {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		_, err := run(ctx, "ip", "netns", "del", namespaces[i])
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("lab: delete namespace %s: %w", namespaces[i], err))
		}
	}
	if len(errs) == 0 {
		_ = os.Remove(l.markerPath())
	}
	return errors.Join(errs...)
}

// Namespaces returns the names of the namespaces the lab has made and not
// yet deleted.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.namespaces...)
}

// addProc records p for Close, or reports that the lab is closed.
func (l *Lab) addProc(p *Proc) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("lab: closed")
	}
	l.procs = append(l.procs, p)
	return nil
}
