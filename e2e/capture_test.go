package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// pcap is a tcpdump capture running in a namespace.
type pcap struct {
	path string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startPcap starts tcpdump on iface in namespace ns, writing the frames
// that match filter to a pcap file in dir, and waits until it listens;
// flags are more tcpdump flags ("-Q", "in"). The capture is killed at
// cleanup if still running.
func startPcap(t testing.TB, ns, iface, dir, filter string, flags ...string) *pcap {
	t.Helper()
	c := &pcap{path: filepath.Join(dir, ns+"-"+iface+".pcap"), done: make(chan struct{})}
	c.log = c.path + ".log"
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{"netns", "exec", ns, "tcpdump", "-i", iface, "-n", "--immediate-mode", "-U", "-w", c.path}, flags...)
	c.cmd = exec.Command("ip", append(args, filter)...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := lab.StartCmd(c.cmd); err != nil {
		t.Fatalf("starting tcpdump: %v", err)
	}
	done := c.done
	go func() { _ = c.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(c.log)
		if strings.Contains(string(b), "listening on") {
			return c
		}
		select {
		case <-done:
			t.Fatalf("tcpdump exited: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump does not listen after 10 s: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the capture; tcpdump flushes its file on SIGINT.
func (c *pcap) stop(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("stopping tcpdump: %v", err)
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("tcpdump still running 5 s after SIGINT")
	}
}

// runTshark runs tshark (bin) with args and one -e per field, and returns
// one map of the fields' values per output line.
func runTshark(t testing.TB, bin string, args, fields []string) []map[string]string {
	t.Helper()
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	var rows []map[string]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		vals := strings.Split(line, "\t")
		row := map[string]string{}
		for i, f := range fields {
			if i < len(vals) {
				row[f] = vals[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// parseEpoch parses a tshark frame.time_epoch ("1765099811.123456789").
func parseEpoch(s string) (time.Time, error) {
	ts, frac, _ := strings.Cut(s, ".")
	sec, err1 := strconv.ParseInt(ts, 10, 64)
	nsec, err2 := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, fmt.Errorf("frame.time_epoch %q", s)
	}
	return time.Unix(sec, nsec), nil
}
