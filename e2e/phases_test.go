package e2e

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A trace as tracefs writes it: thread 14842 wakes from epoll_pwait,
// sends, renews, re-arms and waits again; another thread's events, the
// events before the thread's first switch off the processor and the
// stretch cut off by the trace's end are left out.
const phasesTrace = `# tracer: nop
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
           carpd-14842   [000] .....  1585.000000: sys_exit: NR 46 = 56
           carpd-14842   [000] .....  1585.000010: sys_enter: NR 281 (4, 7f8841a9a584, 80, ffffffffffffffff, 0, 0)
           carpd-14842   [000] d..2.  1585.000020: sched_switch: prev_comm=carpd prev_pid=14842 prev_prio=110 prev_state=S ==> next_comm=kworker/0:1 next_pid=11 next_prio=120
          <idle>-0       [000] d..2.  1587.162240: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=carpd next_pid=14842 next_prio=110
           carpd-14842   [000] .....  1587.162295: sys_exit: NR 281 = 1
           other-999     [001] .....  1587.162300: sys_enter: NR 46 (b, 782bb78880, 40, 0, 0, 0)
           carpd-14842   [000] .....  1587.162602: sys_enter: NR 46 (b, 782bb78880, 40, 0, 0, 0)
           carpd-14842   [000] .....  1587.162737: sys_exit: NR 46 = 56
           carpd-14842   [000] .....  1587.162751: sys_enter: NR 44 (8, 782baccf00, 3c, 0, 0, 0)
           carpd-14842   [000] .....  1587.162793: sys_exit: NR 44 = 60
           carpd-14842   [000] .....  1587.162799: sys_enter: NR 286 (f, 0, 782bb90d30, 0, 0, 0)
           carpd-14842   [000] .....  1587.162801: sys_exit: NR 286 = 0
           carpd-14842   [000] .....  1587.162818: sys_enter: NR 281 (4, 7f8841a9a584, 80, ffffffffffffffff, 0, 0)
           carpd-14842   [000] d..2.  1587.162824: sched_switch: prev_comm=carpd prev_pid=14842 prev_prio=110 prev_state=S ==> next_comm=kworker/0:1 next_pid=11 next_prio=120
          <idle>-0       [000] d..2.  1588.552819: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=carpd next_pid=14842 next_prio=110
           carpd-14842   [000] .....  1588.552864: sys_exit: NR 281 = 1
`

func TestParseWakePhases(t *testing.T) {
	ss, err := parseWakePhases(phasesTrace, map[int]bool{14842: true}, unix.SYS_SENDMSG)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 {
		t.Fatalf("%d stretches, want 1: %+v", len(ss), ss)
	}
	s := ss[0]
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	want := map[string]time.Duration{"sendmsg": us(135), "sendto": us(42), "timerfd_settime": us(2)}
	for name, d := range want {
		if s.calls[name] != d {
			t.Errorf("%s %v, want %v", name, s.calls[name], d)
		}
	}
	if len(s.calls) != len(want) {
		t.Errorf("calls %v, want %v", s.calls, want)
	}
	// user: 307 before the send, then 14, 6 and 17 between the calls;
	// the 6 us before the switch are inside epoll_pwait.
	if s.awake != us(529) || s.wake != us(55) || s.toCall != us(307) || s.user != us(307+14+6+17) || !s.sent {
		t.Errorf("got %+v", s)
	}
	n, med := phaseMedians(ss)
	if n != 1 || med["awake"] != us(529) || med["sendto"] != us(42) {
		t.Errorf("medians %d %v", n, med)
	}
	// A switch onto the processor that is not traced: no wake phase.
	noIn := strings.Replace(phasesTrace, "1587.162240: sched_switch", "1587.162240: sched_other", 1)
	if ss, err := parseWakePhases(noIn, map[int]bool{14842: true}, unix.SYS_SENDMSG); err != nil || len(ss) != 1 || ss[0].wake != 0 || ss[0].awake != us(529) {
		t.Errorf("without the switch in: %+v, %v", ss, err)
	}
	// No advert: no stretch that sent.
	if ss, _ := parseWakePhases(phasesTrace, map[int]bool{14842: true}, unix.SYS_RECVMSG); len(ss) != 1 || ss[0].sent {
		t.Errorf("with another send call: %+v", ss)
	}
	if _, err := parseWakePhases("# nothing\n", map[int]bool{1: true}, unix.SYS_SENDMSG); err == nil {
		t.Error("an empty trace parsed")
	}
}
