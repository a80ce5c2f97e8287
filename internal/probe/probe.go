// Package probe measures reachability of an address with ICMP echo
// requests, as ping(8) does, and summarises the outages it saw.
//
// Listen opens raw ICMP sockets (root or CAP_NET_RAW) in the network
// namespace of the calling thread, so a test calls it inside lab.Host.Do;
// the sockets stay in that namespace for their whole life.
package probe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// MinTimeout is the shortest time a probe waits for its reply before it
// counts as lost; the timeout is MinTimeout or 3 intervals, whichever is
// longer.
const MinTimeout = time.Second

// Timeout returns how long a probe sent every interval waits for its reply.
func Timeout(interval time.Duration) time.Duration {
	return max(MinTimeout, 3*interval)
}

// Result is the fate of one echo request.
type Result struct {
	Seq  int           // 1, 2, ... in sending order (the wire carries Seq mod 65536)
	Sent time.Time     // when the request was sent
	RTT  time.Duration // time to the reply; 0 if lost
	Lost bool          // no reply within the timeout
	Err  error         // why the request could not be sent, if it could not (then Lost)
}

// Prober sends echo requests from one namespace. One Run at a time.
type Prober struct {
	c4, c6 *icmp.PacketConn // c6 is nil when IPv6 is unavailable
	id     int

	mu      sync.Mutex
	running bool
}

// nextID makes echo identifiers unique among the probers of this process,
// which share raw sockets' view of every ICMP message in a namespace.
var nextID atomic.Uint32

func init() {
	var b [2]byte
	_, _ = rand.Read(b[:])
	nextID.Store(uint32(binary.BigEndian.Uint16(b[:])))
}

// Listen opens the prober's raw ICMPv4 socket, and an ICMPv6 one when the
// namespace has IPv6, in the calling thread's network namespace.
func Listen() (*Prober, error) {
	c4, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("probe: listen ip4:icmp: %w", err)
	}
	c6, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		c6 = nil // IPv6 disabled: IPv4 probes still work.
	}
	return &Prober{c4: c4, c6: c6, id: int(uint16(nextID.Add(1)))}, nil
}

// Close closes the sockets. A Run in progress returns at once with the
// results so far, those still waiting counted as lost.
func (p *Prober) Close() error {
	err := p.c4.Close()
	if p.c6 != nil {
		err = errors.Join(err, p.c6.Close())
	}
	return err
}

// reply is one echo reply that matched the prober's identifier and target.
type reply struct {
	seq uint16
	at  time.Time
}

// Run sends an echo request to dst at once and then every interval until
// ctx is done, then waits out the timeout (see Timeout) of the requests
// still unanswered. It calls onResult (if not nil) from Run's goroutine
// each time a request is settled - answered or timed out - so not
// necessarily in Seq order. It returns every result in Seq order. A send
// failure (say, no route) makes that probe lost, not the run fail; an error
// is returned only when the socket fails (or is closed), and then the
// results so far come with it.
func (p *Prober) Run(ctx context.Context, dst netip.Addr, interval time.Duration, onResult func(Result)) ([]Result, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("probe: interval %v must be positive", interval)
	}
	conn, echo, echoReply := p.c4, icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply)
	proto := 1 // ICMP
	if dst.Is6() && !dst.Is4In6() {
		if p.c6 == nil {
			return nil, fmt.Errorf("probe: %s: no IPv6 in this namespace", dst)
		}
		conn, echo, echoReply, proto = p.c6, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	} else {
		dst = dst.Unmap()
	}
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return nil, errors.New("probe: Run already in progress")
	}
	p.running = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.running = false
		p.mu.Unlock()
	}()

	replies := make(chan reply, 64)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		readErr <- p.read(conn, proto, echoReply, dst, stop, replies)
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	timeout := Timeout(interval)
	target := &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	var results []Result
	pending := make(map[uint16]int) // wire seq -> index in results
	settle := func(i int) {
		if onResult != nil {
			onResult(results[i])
		}
	}
	send := func() {
		seq := len(results) + 1
		results = append(results, Result{Seq: seq, Sent: time.Now()})
		i := len(results) - 1
		msg := icmp.Message{Type: echo, Body: &icmp.Echo{ID: p.id, Seq: int(uint16(seq)), Data: []byte("carpd probe")}}
		b, err := msg.Marshal(nil) // ICMPv6: the kernel fills in the checksum.
		if err == nil {
			_, err = conn.WriteTo(b, target)
		}
		if err != nil {
			results[i].Lost, results[i].Err = true, err
			settle(i)
			return
		}
		pending[uint16(seq)] = i
	}

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	sending := true
	send()
	for sending || len(pending) > 0 {
		// Arm the timer for the oldest unanswered request.
		var oldest time.Time
		for _, i := range pending {
			if oldest.IsZero() || results[i].Sent.Before(oldest) {
				oldest = results[i].Sent
			}
		}
		var expiryC <-chan time.Time
		if !oldest.IsZero() {
			expiry.Reset(time.Until(oldest.Add(timeout)))
			expiryC = expiry.C
		}
		tickC, done := ticker.C, ctx.Done()
		if !sending {
			tickC, done = nil, nil
		}
		select {
		case <-done:
			sending = false
		case <-tickC:
			send()
		case r := <-replies:
			if i, ok := pending[r.seq]; ok {
				delete(pending, r.seq)
				results[i].RTT = max(r.at.Sub(results[i].Sent), time.Nanosecond)
				settle(i)
			}
		case now := <-expiryC:
			for s, i := range pending {
				if !now.Before(results[i].Sent.Add(timeout)) {
					delete(pending, s)
					results[i].Lost = true
					settle(i)
				}
			}
		case err := <-readErr:
			for _, i := range pending {
				results[i].Lost = true
			}
			return results, fmt.Errorf("probe: read: %w", err)
		}
	}
	return results, nil
}

// read passes echo replies from dst with the prober's identifier to
// replies until stop is closed (then it returns nil) or the socket fails.
func (p *Prober) read(conn *icmp.PacketConn, proto int, echoReply icmp.Type, dst netip.Addr, stop <-chan struct{}, replies chan<- reply) error {
	buf := make([]byte, 1500)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		if err := conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
			return err
		}
		n, peer, err := conn.ReadFrom(buf)
		at := time.Now()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			select {
			case <-stop:
				return nil
			default:
				return err
			}
		}
		ipa, ok := peer.(*net.IPAddr)
		if !ok {
			continue
		}
		from, ok := netip.AddrFromSlice(ipa.IP)
		if !ok || from.Unmap() != dst.WithZone("") {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != echoReply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.ID != p.id {
			continue
		}
		select {
		case replies <- reply{seq: uint16(e.Seq), at: at}:
		case <-stop:
			return nil
		}
	}
}
