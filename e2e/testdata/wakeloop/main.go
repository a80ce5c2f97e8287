// Command wakeloop wakes every interval through carpd's timer (host.Clock:
// a timerfd that the runtime's poller waits for, on one processor, as
// carpd runs), re-arms it and does nothing else: the Go runtime's part of
// an idle carpd master's wake, for BenchmarkIdleWakePhases.
//
//	wakeloop 1.390625s
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/carpd/carpd/internal/host"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: wakeloop INTERVAL")
		os.Exit(2)
	}
	d, err := time.ParseDuration(os.Args[1])
	if err != nil || d <= 0 {
		fmt.Fprintf(os.Stderr, "wakeloop: bad interval %q\n", os.Args[1])
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1)
	t := host.Clock{}.NewTimer(d)
	for {
		<-t.C()
		t.Reset(d)
	}
}
