package demo

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/probe"
)

// masterDownBound is FreeBSD's master-down interval of a backup:
// 3*advbase + advskew/256 seconds (carp-protocol.md, section 3).
func masterDownBound(advbase, advskew int) time.Duration {
	return time.Duration(3*advbase)*time.Second + time.Duration(advskew)*time.Second/256
}

// formatStats renders the end-of-walkthrough statistics: the printed pings'
// counts, in Windows ping's words, and the outage as measured by a probe
// every fine interval, next to the bound (what says which: "CARP bound
// 3*advbase + advskew/256").
func formatStats(vip netip.Addr, s probe.Stats, outage, fine, bound time.Duration, what string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Ping statistics for %s:\n", vip)
	fmt.Fprintf(&b, "    Packets: Sent = %d, Received = %d, Lost = %d (%d%% loss),\n", s.Sent, s.Received, s.Lost, s.LossPercent())
	bnd := fmt.Sprintf("%s = %.2f s", what, bound.Seconds())
	if outage == 0 {
		fmt.Fprintf(&b, "Outage: none seen by a probe every %v (%s)\n", fine, bnd)
	} else {
		fmt.Fprintf(&b, "Outage: %.1f s, measured by a probe every %v (%s)\n", outage.Seconds(), fine, bnd)
	}
	return b.String()
}

// heldBy names the nodes holding the address, and the state carpd last
// logged on every other node: "backup (master is BACKUP)".
func heldBy(holders []string, states map[string]string) string {
	var others []string
	for _, n := range nodes {
		held := false
		for _, h := range holders {
			held = held || h == n.name
		}
		if !held {
			others = append(others, fmt.Sprintf("%s is %s", n.name, states[n.name]))
		}
	}
	var who string
	switch len(holders) {
	case 0:
		who = "nobody"
	case 1:
		who = holders[0]
	default:
		who = strings.Join(holders, " and ") + " (two masters!)"
	}
	if len(others) == 0 {
		return who
	}
	return who + " (" + strings.Join(others, ", ") + ")"
}

// transition matches carpd's state change lines, as FreeBSD logs them:
// "carp: 100@eth0: BACKUP -> MASTER (master timed out)".
var transition = regexp.MustCompile(`carp: \d+@\S+: ([A-Z]+) -> ([A-Z]+)`)

// lastState returns the state of carpd's last transition line in output,
// or "INIT" if it logged none.
func lastState(output string) string {
	state := "INIT"
	for _, m := range transition.FindAllStringSubmatch(output, -1) {
		state = m[2]
	}
	return state
}

// slogLine matches a log/slog text line: time=... level=... msg="...".
var slogLine = regexp.MustCompile(`^time=(\S+) level=\S+ msg=("(?:[^"\\]|\\.)*"|\S+)`)

// logLine shortens one of carpd's log lines for the walkthrough: a slog
// text line becomes its time of day and message; other lines are kept.
func logLine(line string) string {
	line = strings.TrimSpace(line)
	m := slogLine.FindStringSubmatch(line)
	if m == nil {
		return line
	}
	msg := m[2]
	if u, err := strconv.Unquote(msg); err == nil {
		msg = u
	}
	if t, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
		return t.Format("15:04:05.000") + " " + msg
	}
	return msg
}
