package service

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/carpd/carpd/internal/daemon"
)

// ucarpSignals handles ucarp's signals until ctx is done: SIGUSR1 logs
// every vhid's status, SIGUSR2 makes the MASTER vhids give up (see
// daemon.GiveUpMaster). Both go through the daemon's event loop.
func ucarpSignals(ctx context.Context, d *daemon.Daemon, log *slog.Logger) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-ch:
				var err error
				if s == syscall.SIGUSR1 {
					err = d.LogStatus(ctx)
				} else {
					var n int
					n, err = d.GiveUpMaster(ctx)
					if err == nil && n == 0 {
						log.Info("carpd: caught SIGUSR2; no vhid is MASTER")
					}
				}
				if err != nil && ctx.Err() == nil {
					log.Warn("carpd: signal not handled", "signal", s, "err", err)
				}
			}
		}
	}()
}
