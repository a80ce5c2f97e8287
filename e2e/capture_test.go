package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	if err := c.cmd.Start(); err != nil {
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
