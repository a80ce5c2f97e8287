// Command carpd-demo plays FreeBSD's CARP walkthrough in network
// namespaces: two hosts run carpd with the handbook's rc.conf lines, a
// third pings the virtual address once a second, the master reboots and
// the backup takes the address over. It needs root. The test lab lives
// here, not in the carpd binary.
//
//	carpd-demo [--carpd PATH] [--preempt] [--etcd]
//
// With --etcd the vhid is elected on a real 3-member etcd cluster (the
// helper command of e2e/etcdlab, built from the source tree unless
// CARPD_ETCDLAB_BIN names it) instead of by CARP adverts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/carpd/carpd/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("carpd-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	carpd := fs.String("carpd", "", "the carpd binary to run on master and backup (default: carpd beside this program, else on $PATH)")
	preempt := fs.Bool("preempt", false, "run both carpd with --preempt: the master takes its address back when it returns")
	etcd := fs.Bool("etcd", false, "elect the vhid on a 3-member etcd cluster (electorate = \"etcd\") instead of by CARP adverts")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "carpd-demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	bin, err := findCarpd(*carpd)
	if err != nil {
		fmt.Fprintf(stderr, "carpd-demo: %v\n", err)
		return 2
	}
	if err := demo.Run(ctx, demo.Options{Carpd: bin, Stdout: stdout, Preempt: *preempt, Etcd: *etcd}); err != nil {
		fmt.Fprintln(stderr, err) // demo's errors say "carpd-demo: ..."
		return 1
	}
	return 0
}

// findCarpd returns the carpd binary to run: the one named, else the one
// beside this program, else the one on $PATH.
func findCarpd(named string) (string, error) {
	if named != "" {
		return filepath.Abs(named)
	}
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), "carpd")
		if _, err := os.Stat(beside); err == nil {
			return beside, nil
		}
	}
	p, err := exec.LookPath("carpd")
	if err != nil {
		return "", errors.New("no carpd binary beside carpd-demo nor on $PATH: give --carpd PATH")
	}
	return filepath.Abs(p)
}
