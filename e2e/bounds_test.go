package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// The control socket's limits, as internal/control/server.go sets them
// (and internal/metrics for its port): a request's header must arrive
// within 5 s, the whole request within 10 s.
const (
	controlHeaderTimeout  = 5 * time.Second
	controlRequestTimeout = 10 * time.Second
)

// resources is what a carpd holds: goroutines (go_goroutines, scraped from
// its metrics) and open file descriptors (/proc/PID/fd).
type resources struct{ goroutines, fds int }

func measure(t testing.TB, h *lab.Host, p *lab.Proc) resources {
	t.Helper()
	v, ok := value(scrape(t, h), "go_goroutines")
	if !ok {
		t.Fatalf("no go_goroutines in %s's metrics", h.Name)
	}
	return resources{int(v), fdCount(t, p.PID())}
}

// settled polls until carpd holds at most base plus slack (things ending
// after their client has gone take a moment), and returns the last
// measure.
func settled(t testing.TB, h *lab.Host, p *lab.Proc, base resources, slack int, timeout time.Duration) resources {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := measure(t, h, p)
		if (r.goroutines <= base.goroutines+slack && r.fds <= base.fds+slack) || time.Now().After(deadline) {
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// controlConn is one connection to the control socket, used in one of
// the ways a client may leave it.
func controlConn(t testing.TB, path string, kind int) error {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	write := func(s string) error { _, err := io.WriteString(c, s); return err }
	switch kind {
	case 0: // open and closed
		return nil
	case 1: // half a request line
		return write("GET /v1/sta")
	case 2: // half the header
		return write("GET /v1/status HTTP/1.1\r\nHost: carpd\r\nContent-Ty")
	case 3: // the header, half the body
		return write("POST /v1/demote HTTP/1.1\r\nHost: carpd\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"delta\":")
	case 4, 5: // a whole request, the answer read
		path := map[int]string{4: "/v1/status", 5: "/v1/stats"}[kind]
		if err := write("GET " + path + " HTTP/1.1\r\nHost: carpd\r\nConnection: close\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return nil
	case 6: // the event stream: its snapshot read, then dropped
		if err := write("GET /v1/events HTTP/1.1\r\nHost: carpd\r\n\r\n"); err != nil {
			return err
		}
		rd := bufio.NewReader(c)
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			return err
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.Contains(line, `"snapshot"`) {
			return fmt.Errorf("events: first line %q, %v", line, err)
		}
		return nil
	case 7: // the event stream asked for and dropped unread
		return write("GET /v1/events HTTP/1.1\r\nHost: carpd\r\n\r\n")
	}
	return fmt.Errorf("no kind %d", kind)
}

// TestBounds: carpd's goroutines and file descriptors stay constant across
// 100 reloads (carpctl reload and SIGHUP) and 1,000 control connections
// (opened and closed, half a request line, half a header, half a body,
// whole requests, event streams dropped); slow clients that hold a
// half-written request open are cut off (header within 5 s, whole request
// within 10 s) while an event stream older than that keeps flowing.
func TestBounds(t *testing.T) {
	c := newCluster(t, "--metrics-listen", metricsAddr)
	startPair(t, c)
	mp := c.procs[c.master]
	ctl := c.ctlPath(c.master)
	c.waitAnnounced(t, c.master, 10*time.Second)
	base := settled(t, c.master, mp, resources{}, 1<<30, 0)
	t.Logf("at rest: %d goroutines, %d fds", base.goroutines, base.fds)

	// 100 reloads.
	logAt := len(mp.Output())
	for i := range 100 {
		if i%2 == 0 {
			if out, errOut, code := c.carpctl(c.master, "reload"); code != 0 {
				t.Fatalf("reload #%d: exit %d: %s%s", i, code, out, errOut)
			}
			continue
		}
		if err := mp.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		// One SIGHUP at a time: signals sent together may merge.
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(mp.Output()[logAt:], "configuration reloaded") < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("reload #%d by SIGHUP not logged", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if n := strings.Count(mp.Output()[logAt:], "configuration reloaded"); n != 100 {
		t.Errorf("%d reloads logged, want 100", n)
	}
	afterReloads := settled(t, c.master, mp, base, 2, 10*time.Second)
	t.Logf("after 100 reloads: %d goroutines, %d fds", afterReloads.goroutines, afterReloads.fds)
	if afterReloads.goroutines > base.goroutines+2 || afterReloads.fds > base.fds+2 {
		t.Errorf("growth across 100 reloads: %+v -> %+v", base, afterReloads)
	}

	// 1,000 control connections, 20 at a time.
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	sem := make(chan struct{}, 20)
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func(kind int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := controlConn(t, ctl, kind); err != nil {
				errs <- fmt.Errorf("connection kind %d: %w", kind, err)
			}
		}(i % 8)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	afterConns := settled(t, c.master, mp, base, 2, 10*time.Second)
	t.Logf("after 1,000 control connections: %d goroutines, %d fds", afterConns.goroutines, afterConns.fds)
	if afterConns.goroutines > base.goroutines+2 || afterConns.fds > base.fds+2 {
		t.Errorf("growth across 1,000 control connections: %+v -> %+v", base, afterConns)
	}

	// Slow clients that keep their half-written requests open are cut
	// off; an event stream opened beside them keeps flowing past those
	// limits.
	const slow = 32
	type cut struct {
		kind  int
		after time.Duration
	}
	cuts := make(chan cut, slow)
	start := time.Now()
	var conns []net.Conn
	for i := range slow {
		// Kind 1 to 3 on the control socket; 4 and 5, half a header and
		// half a body, on the metrics port.
		kind := []int{1, 2, 3, 1, 2, 3, 4, 5}[i%8]
		var conn net.Conn
		var err error
		if kind <= 3 {
			conn, err = net.Dial("unix", ctl)
		} else {
			err = c.master.Do(func() (err error) { conn, err = net.Dial("tcp", metricsAddr); return err })
		}
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		req := map[int]string{
			1: "GET /v1/sta",
			2: "GET /v1/status HTTP/1.1\r\nHost: carpd\r\n",
			3: "POST /v1/demote HTTP/1.1\r\nHost: carpd\r\nContent-Length: 40\r\n\r\n{\"delta\":",
			4: "GET /metrics HTTP/1.1\r\nHost: carpd\r\n",
			5: "POST /metrics HTTP/1.1\r\nHost: carpd\r\nContent-Length: 40\r\n\r\nx",
		}[kind]
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		go func() {
			// Until carpd closes it (or the test gives up).
			_ = conn.SetReadDeadline(time.Now().Add(controlRequestTimeout + 20*time.Second))
			_, _ = io.Copy(io.Discard, conn)
			cuts <- cut{kind, time.Since(start)}
		}()
	}
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	events := unixClient(ctl)
	events.Timeout = 0
	resp, err := events.Get("http://carpd/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	held := measure(t, c.master, mp)
	t.Logf("with %d slow clients and an event stream: %d goroutines, %d fds", slow, held.goroutines, held.fds)
	limit := map[int]time.Duration{1: controlHeaderTimeout, 2: controlHeaderTimeout, 3: controlRequestTimeout, 4: controlHeaderTimeout, 5: controlRequestTimeout}
	for range slow {
		select {
		case ct := <-cuts:
			if ct.after > limit[ct.kind]+3*time.Second {
				t.Errorf("a slow client (kind %d) was cut off after %v, want within %v", ct.kind, ct.after.Round(time.Millisecond), limit[ct.kind])
			}
		case <-time.After(controlRequestTimeout + 25*time.Second):
			t.Fatalf("slow clients still connected after %v", time.Since(start))
		}
	}
	t.Logf("slow clients cut off after %v", time.Since(start).Round(time.Millisecond))
	// The event stream, older than the limits, still flows: a demotion
	// and its end come through.
	if d := controlRequestTimeout + time.Second - time.Since(start); d > 0 {
		time.Sleep(d)
	}
	for _, delta := range []string{"+1", "-1"} {
		if out, errOut, code := c.carpctl(c.master, "demote", delta, "--reason", "bounds"); code != 0 {
			t.Fatalf("demote %s: exit %d: %s%s", delta, code, out, errOut)
		}
	}
	got := 0
	for got < 2 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the event stream ended after %v", time.Since(start).Round(time.Millisecond))
			}
			if strings.Contains(l, `"type":"demotion"`) {
				got++
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the event stream, %v old, brought %d of the 2 demotions", time.Since(start).Round(time.Second), got)
		}
	}
	resp.Body.Close()
	events.CloseIdleConnections()
	end := settled(t, c.master, mp, base, 2, 10*time.Second)
	t.Logf("at the end: %d goroutines, %d fds", end.goroutines, end.fds)
	if end.goroutines > base.goroutines+2 || end.fds > base.fds+2 {
		t.Errorf("growth: %+v at rest, %+v at the end", base, end)
	}
	if st := c.status(c.master); st.VHIDs[0].State != "MASTER" || st.Demotion != 0 || st.VHIDs[0].Counters.Transitions != 2 {
		t.Errorf("after it all: %+v", st.VHIDs[0])
	}
}
