// Command carpcraft sends crafted CARP advertisements, hostile ones
// included, out of one interface: a forged HMAC, a TTL of 254, a bad
// checksum, other versions and types, truncated and oversized adverts, an
// unknown vhid, advbase 0, a captured advert replayed, a host's own
// adverts echoed back; any source (spoofed, or random in a prefix), at a
// set rate for a count or a duration, up to a flood of tens of thousands
// of packets a second (sendmmsg batches). It prints what it sent and the
// rate it reached. It is a test tool (the e2e tests and the flood
// benchmark run it inside network namespaces); carpd does not link it. It
// needs CAP_NET_RAW.
//
//	carpcraft --iface IFACE [--family 4|6] [--kind KIND] [--vhid N] [--pass P] [--addrs A,B]
//	          [--src ADDR|PREFIX] [--dst ADDR] [--rate PPS] (--count N | --duration D) ...
//
// Exit statuses: 0 sent; 1 nothing could be sent; 2 bad command line.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/craft"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// optUint is a numeric flag that remembers whether it was given.
type optUint struct {
	set bool
	v   uint64
	max uint64
}

func (o *optUint) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatUint(o.v, 10)
}

func (o *optUint) Set(s string) error {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil || v > o.max {
		return fmt.Errorf("want a number 0..%d", o.max)
	}
	o.set, o.v = true, v
	return nil
}

func (o *optUint) u8() *uint8 {
	if !o.set {
		return nil
	}
	v := uint8(o.v)
	return &v
}

// result is the last line carpcraft prints (--json: as JSON).
type result struct {
	Kind    string  `json:"kind"`
	Sent    int     `json:"sent"`
	Failed  int     `json:"failed"`
	Seconds float64 `json:"seconds"`
	PPS     float64 `json:"pps"`
	// MaxLagMS is how far behind its schedule a paced run fell at worst.
	MaxLagMS float64 `json:"max-lag-ms"`
	FirstErr string  `json:"first-error,omitempty"`
}

func usageText(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("usage: carpcraft --iface IFACE [flags]\n\nkinds:\n")
	for _, k := range craft.Kinds() {
		fmt.Fprintf(&b, "  %-12s %s\n", k.Name, k.Help)
	}
	b.WriteString("  replay       the advert of --replay (hex, or the first in a pcap file; --replay-src picks a source), sent as captured\n")
	b.WriteString("  echo         the latest advert heard from --echo-of, sent back as heard (--src defaults to --echo-of)\n\nflags:\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("carpcraft", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	iface := fs.String("iface", "", "the interface to send from (required)")
	family := fs.Int("family", 4, "4 or 6")
	kind := fs.String("kind", "forged", "what to send (see kinds)")
	vhid := fs.Uint("vhid", 1, "the vhid the receivers have")
	pass := fs.String("pass", "", "the vhid's password, for --auth right (empty: CARP's all-zero key)")
	forgePass := fs.String("forge-pass", "forged", "the other password of --auth forged")
	addrsFlag := fs.String("addrs", "", "the vhid's addresses, comma-separated, for the HMAC")
	auth := fs.String("auth", "", "right, forged or random: how the HMAC is made (default: the kind's)")
	srcFlag := fs.String("src", "", "source address, or a prefix to draw a random source from per packet (default: the interface's own; IPv6: its link-local)")
	dstFlag := fs.String("dst", "", "destination (default: 224.0.0.18 or ff02::12)")
	ttl := &optUint{max: 255}
	fs.Var(ttl, "ttl", "TTL or hop limit (default: the kind's, 255 but for ttl)")
	tos := fs.Uint("tos", 0xe0, "TOS or traffic class")
	rate := fs.Float64("rate", 10, "packets per second (0: as fast as the socket takes them)")
	count := fs.Int("count", 0, "packets to send")
	duration := fs.Duration("duration", 0, "how long to send (with --count: whichever ends first)")
	batch := fs.Int("batch", 64, "most packets per sendmmsg")
	ring := fs.Int("ring", 1024, "distinct packets built (counters, random sources), sent in turn")
	fields := map[string]*optUint{}
	for _, f := range []struct{ name, help string }{
		{"version", "the version nibble"}, {"type", "the type nibble"}, {"advskew", "advskew (default 0)"},
		{"advbase", "advbase (default 1)"}, {"demote", "byte 4, OpenBSD's demote count (default 0)"},
		{"authlen", "authlen (default 7)"}, {"advert-vhid", "the vhid the advert carries (default --vhid)"},
	} {
		fields[f.name] = &optUint{max: 255}
		fs.Var(fields[f.name], f.name, f.help)
	}
	fields["type"].max, fields["version"].max = 15, 15
	counter := &optUint{max: math.MaxUint64}
	fs.Var(counter, "counter", "the first packet's counter; each next one is one higher (default: random)")
	length := &optUint{max: craft.MaxLen - craft.IPv6HeaderLen}
	fs.Var(length, "len", "payload length: cut or zero-padded (default: the kind's, 36)")
	badsum := fs.Bool("badsum", false, "make the checksum wrong")
	replay := fs.String("replay", "", "replay: a pcap file, or the advert (or its IP packet) in hex")
	replaySrc := fs.String("replay-src", "", "replay: take the pcap's first advert from this source")
	echoOf := fs.String("echo-of", "", "echo: the host whose adverts are sent back")
	echoWait := fs.Duration("echo-wait", 10*time.Second, "echo: how long to wait for the first advert")
	dryRun := fs.Bool("dry-run", false, "print the first packet in hex and its decoding, send nothing")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "carpcraft: "+format+"\n", a...)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText(fs))
			return 0
		}
		return usage("%v (--help lists the flags)", err)
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *iface == "":
		return usage("--iface is required")
	case *family != 4 && *family != 6:
		return usage("--family %d: want 4 or 6", *family)
	case *vhid < 1 || *vhid > 255:
		return usage("--vhid %d: want 1..255", *vhid)
	case *tos > 255:
		return usage("--tos %d: want 0..255", *tos)
	case *rate < 0 || math.IsInf(*rate, 0) || math.IsNaN(*rate):
		return usage("--rate %v: want a number of packets per second, 0 for no limit", *rate)
	case *count < 0 || *duration < 0:
		return usage("--count and --duration must not be negative")
	case *count == 0 && *duration == 0 && !*dryRun:
		return usage("give --count or --duration")
	case *batch < 1 || *ring < 1:
		return usage("--batch and --ring must be at least 1")
	}

	var src netip.Prefix
	if *srcFlag == "" && *kind == "echo" && *echoOf != "" {
		*srcFlag = *echoOf
	}
	if *srcFlag != "" {
		var err error
		if strings.Contains(*srcFlag, "/") {
			src, err = netip.ParsePrefix(*srcFlag)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(*srcFlag)
			src = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return usage("--src %q: %v", *srcFlag, err)
		}
		src = netip.PrefixFrom(src.Addr().WithZone(""), src.Bits())
	} else {
		a, err := craft.OwnAddr(*family, *iface)
		if err != nil {
			return usage("%v: give --src", err)
		}
		src = netip.PrefixFrom(a, a.BitLen())
	}
	fam := carp.IPv4
	if *family == 6 {
		fam = carp.IPv6
	}
	dst := carp.Group(fam)
	if *dstFlag != "" {
		a, err := netip.ParseAddr(*dstFlag)
		if err != nil {
			return usage("--dst %q: %v", *dstFlag, err)
		}
		dst = a.WithZone("")
	}
	if src.Addr().Is4() != (*family == 4) || dst.Is4() != (*family == 4) {
		return usage("--src %v and --dst %v must be IPv%d addresses", src, dst, *family)
	}
	var addrs []netip.Addr
	for _, s := range strings.FieldsFunc(*addrsFlag, func(r rune) bool { return r == ',' || r == ' ' }) {
		if p, err := netip.ParsePrefix(s); err == nil {
			addrs = append(addrs, p.Addr())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return usage("--addrs: %q is not an address", s)
		}
		addrs = append(addrs, a)
	}

	// The packets: built by kind, or captured (replay, echo).
	var pkts [][]byte
	var echo *echoer
	header := func(payload []byte, id int) ([]byte, error) {
		t := uint8(carp.TTL)
		if v := ttl.u8(); v != nil {
			t = *v
		}
		if *family == 4 {
			return craft.IPv4{Src: src.Addr(), Dst: dst, TTL: t, TOS: uint8(*tos), ID: uint16(id + 1), DF: true}.Packet(payload)
		}
		return craft.IPv6{Src: src.Addr(), Dst: dst, HopLimit: t, TrafficClass: uint8(*tos)}.Packet(payload)
	}
	switch *kind {
	case "replay", "echo":
		for name, f := range fields {
			if f.set {
				return usage("--%s does not apply to --kind %s, which sends captured bytes", name, *kind)
			}
		}
		if counter.set || length.set || *badsum || *auth != "" {
			return usage("--counter, --len, --badsum and --auth do not apply to --kind %s", *kind)
		}
		if !src.IsSingleIP() {
			return usage("--kind %s sends from one --src address", *kind)
		}
		if *kind == "replay" {
			payload, what, err := loadReplay(*replay, *replaySrc, *family)
			if err != nil {
				return usage("--replay: %v", err)
			}
			p, err := header(payload, 0)
			if err != nil {
				return usage("%v", err)
			}
			pkts = [][]byte{p}
			fmt.Fprintf(stderr, "carpcraft: replaying %s\n", what)
			break
		}
		of, err := netip.ParseAddr(*echoOf)
		if err != nil {
			return usage("--echo-of %q: %v", *echoOf, err)
		}
		echo = &echoer{of: of.WithZone(""), header: header}
	default:
		o := craft.Options{
			Kind: *kind, Family: *family, VHID: uint8(*vhid), Pass: *pass, ForgePass: *forgePass, Addrs: addrs,
			Auth: craft.Auth(*auth), Src: src, Dst: dst, TTL: ttl.u8(), TOS: uint8(*tos), Ring: *ring,
			Fields: craft.Fields{
				Version: fields["version"].u8(), Type: fields["type"].u8(), VHID: fields["advert-vhid"].u8(),
				AdvSkew: fields["advskew"].u8(), AuthLen: fields["authlen"].u8(), Demote: fields["demote"].u8(),
				AdvBase: fields["advbase"].u8(),
			},
		}
		if *count > 0 && *count < o.Ring {
			o.Ring = *count
		}
		if counter.set {
			o.Counter = &counter.v
		}
		if length.set {
			n := int(length.v)
			o.Fields.Len = &n
		}
		if *badsum {
			o.Fields.BadChecksum = badsum
		}
		var err error
		if pkts, err = o.Packets(); err != nil {
			return usage("%v", err)
		}
	}

	if *dryRun {
		if echo != nil {
			return usage("--dry-run has nothing to show for --kind echo")
		}
		describe(stdout, pkts[0])
		return 0
	}

	s, err := craft.NewSender(*family, *iface)
	if err != nil {
		fmt.Fprintf(stderr, "carpcraft: %v\n", err)
		return 1
	}
	defer s.Close()
	next := func(i int) []byte { return pkts[i%len(pkts)] }
	if echo != nil {
		l, err := craft.Listen(*family, *iface)
		if err != nil {
			fmt.Fprintf(stderr, "carpcraft: %v\n", err)
			return 1
		}
		defer l.Close()
		if err := echo.start(ctx, l, *echoWait); err != nil {
			fmt.Fprintf(stderr, "carpcraft: %v\n", err)
			return 1
		}
		next = echo.next
	}
	res := s.Run(ctx, next, dst, craft.Plan{Rate: *rate, Count: *count, Duration: *duration, Batch: *batch})
	out := result{Kind: *kind, Sent: res.Sent, Failed: res.Failed, Seconds: res.Elapsed.Seconds(), PPS: res.Rate(),
		MaxLagMS: float64(res.MaxLag) / float64(time.Millisecond)}
	if res.FirstErr != nil {
		out.FirstErr = res.FirstErr.Error()
	}
	if *asJSON {
		b, _ := json.Marshal(out)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		fmt.Fprintf(stdout, "carpcraft: %s: sent %d packets in %.3f s: %.1f packets/s; %d failed",
			out.Kind, out.Sent, out.Seconds, out.PPS, out.Failed)
		if *rate > 0 {
			fmt.Fprintf(stdout, "; at worst %.1f ms behind schedule", out.MaxLagMS)
		}
		if out.FirstErr != "" {
			fmt.Fprintf(stdout, " (first: %s)", out.FirstErr)
		}
		fmt.Fprintln(stdout)
	}
	if res.Sent == 0 {
		return 1
	}
	return 0
}

// loadReplay returns the payload to replay and says what it is: from a
// pcap file (the first protocol-112 packet of the family, from src if
// given), or from hex (a CARP payload, or an IP packet carrying one).
func loadReplay(arg, src string, family int) ([]byte, string, error) {
	if arg == "" {
		return nil, "", errors.New("give a pcap file or hex bytes")
	}
	var from netip.Addr
	if src != "" {
		a, err := netip.ParseAddr(src)
		if err != nil {
			return nil, "", fmt.Errorf("--replay-src %q: %v", src, err)
		}
		from = a
	}
	if f, err := os.Open(arg); err == nil {
		defer f.Close()
		caps, err := craft.ReadPcap(f)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", arg, err)
		}
		for _, c := range caps {
			if c.Src.Is4() != (family == 4) || (from.IsValid() && c.Src != from) {
				continue
			}
			return c.Payload, fmt.Sprintf("%s (from %v, TTL %d)", advertWords(c.Payload), c.Src, c.TTL), nil
		}
		return nil, "", fmt.Errorf("%s: no IPv%d protocol-112 packet%s among %d", arg, family,
			map[bool]string{true: " from " + src}[from.IsValid()], len(caps))
	}
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", ":", "", "\n", "").Replace(arg))
	if err != nil {
		return nil, "", fmt.Errorf("%q is neither a file nor hex", arg)
	}
	if len(b) > 0 && (b[0]>>4 == 4 || b[0]>>4 == 6) {
		if c, err := craft.ParseIP(b); err == nil {
			return c.Payload, advertWords(c.Payload) + " (from an IP packet in hex)", nil
		}
	}
	return b, advertWords(b) + " (hex)", nil
}

// advertWords describes a payload as a CARP advert, or says why it is not
// one.
func advertWords(p []byte) string {
	a, err := carp.ParseAdvert(p)
	if err != nil {
		return fmt.Sprintf("%d bytes (%v)", len(p), err)
	}
	return fmt.Sprintf("advert vhid %d advbase %d advskew %d counter %#016x", a.VHID, a.AdvBase, a.AdvSkew, a.Counter)
}

// describe prints a packet in hex, then its IP header and advert.
func describe(w io.Writer, pkt []byte) {
	fmt.Fprintf(w, "packet  %x\n", pkt)
	c, err := craft.ParseIP(pkt)
	if err != nil {
		fmt.Fprintf(w, "ip      %v\n", err)
		return
	}
	fmt.Fprintf(w, "ip      %v -> %v ttl %d, %d bytes of payload\n", c.Src, c.Dst, c.TTL, len(c.Payload))
	fmt.Fprintf(w, "payload %x\n", c.Payload)
	fmt.Fprintf(w, "advert  %s\n", advertWords(c.Payload))
}

// echoer sends back the latest advert heard from one host.
type echoer struct {
	of     netip.Addr
	header func(payload []byte, id int) ([]byte, error)
	latest atomic.Pointer[[]byte]
}

// start reads adverts in the background and returns once the first one
// from e.of is in, or fails after wait.
func (e *echoer) start(ctx context.Context, l *craft.Listener, wait time.Duration) error {
	first := make(chan struct{})
	go func() {
		for n := 0; ; {
			c, err := l.Read()
			if err != nil {
				return
			}
			if c.Src != e.of {
				continue
			}
			p, err := e.header(c.Payload, n)
			if err != nil {
				continue
			}
			e.latest.Store(&p)
			if n == 0 {
				close(first)
			}
			n++
		}
	}()
	select {
	case <-first:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return fmt.Errorf("no advert from %v in %v", e.of, wait)
	}
}

func (e *echoer) next(int) []byte { return *e.latest.Load() }
