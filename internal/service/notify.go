package service

import (
	"log/slog"
	"os"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
)

// Notifier is the service manager carpd tells about its life: systemd's
// Type=notify and watchdog (Systemd), or a test's fake.
type Notifier interface {
	// Notify sends state, in sd_notify's words (READY=1, STATUS=...,
	// RELOADING=1, STOPPING=1, WATCHDOG=1).
	Notify(state string) error
	// Watchdog is the service manager's watchdog timeout (WatchdogSec),
	// 0 when it has none.
	Watchdog() time.Duration
}

// Systemd returns systemd's notifier, or nil when carpd does not run
// under it (no NOTIFY_SOCKET).
func Systemd() Notifier {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	return systemd{}
}

// systemd is sd_notify(3) and sd_watchdog_enabled(3).
type systemd struct{}

func (systemd) Notify(state string) error {
	_, err := sddaemon.SdNotify(false, state)
	return err
}

func (systemd) Watchdog() time.Duration {
	d, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || d < 0 {
		return 0
	}
	return d
}

// notifyFuncs returns what the daemon is given of n: the notifier (nil
// without one; a failure is logged at debug) and how often the event loop
// pets the watchdog, half its timeout (0: never).
func notifyFuncs(n Notifier, log *slog.Logger) (func(string), time.Duration) {
	if n == nil {
		return nil, 0
	}
	notify := func(state string) {
		if err := n.Notify(state); err != nil {
			log.Debug("carpd: sd_notify", "err", err)
		}
	}
	return notify, n.Watchdog() / 2
}
