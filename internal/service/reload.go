package service

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/carpd/carpd/internal/api"
	"github.com/carpd/carpd/internal/checks"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/hooks"
)

// reloader re-reads the configuration (the same file and flags) and hands
// it to the daemon and the hooks: SIGHUP and `carpctl reload`.
type reloader struct {
	load   func() (*config.Config, error)
	d      reloadable
	runner *hooks.Runner
	checks *checks.Runner
	log    *slog.Logger

	mu  sync.Mutex // one reload at a time
	cfg *config.Config
}

// reload applies the configuration file as it is now. A file with errors
// is refused with every error (file:line), logged as an error (by says
// who asked: SIGHUP or control, so that `journalctl -p warning` tells why
// `systemctl reload` failed), and the running configuration stays.
func (r *reloader) reload(ctx context.Context, by string) (api.ReloadResult, error) {
	res, err := r.apply(ctx)
	if err != nil {
		r.log.Error("carpd: reload refused; the running configuration stays", "by", by, "err", err)
	}
	return res, err
}

func (r *reloader) apply(ctx context.Context) (api.ReloadResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := r.load()
	if err != nil {
		r.d.ReloadFailed()
		return api.ReloadResult{}, fmt.Errorf("%w: %w", daemon.ErrBadRequest, err)
	}
	scripts := hookScripts(cfg)
	if err := hooks.Check(scripts); err != nil {
		r.d.ReloadFailed()
		return api.ReloadResult{}, fmt.Errorf("%w: %w", daemon.ErrBadRequest, err)
	}
	res, err := r.d.Reload(ctx, cfg)
	if err != nil {
		return res, err
	}
	r.checks.Update(cfg.Checks)
	if err := r.runner.Update(scripts, cfg.HookTimeout); err != nil {
		res.Warnings = append(res.Warnings, "hooks: "+err.Error())
	}
	registerHooks(r.runner, r.log)
	for _, w := range restartOnly(r.cfg, cfg) {
		res.Warnings = append(res.Warnings, w)
		r.log.Warn("carpd: reload: " + w)
	}
	r.cfg = cfg
	return res, nil
}

// reloadable is the daemon as a reload sees it (*daemon.Daemon).
type reloadable interface {
	Reload(ctx context.Context, cfg *config.Config) (api.ReloadResult, error)
	ReloadFailed()
}

// restartOnly is the reload policy: what changed from old to cfg that
// only a restart puts in force, one warning each.
func restartOnly(old, cfg *config.Config) []string {
	var ws []string
	for _, c := range []struct {
		what     string
		old, new any
	}{
		{"control", old.Control, cfg.Control},
		{"control-group", old.ControlGroup, cfg.ControlGroup},
		{"state-file", old.StateFile, cfg.StateFile},
		{"metrics-listen", old.MetricsListen, cfg.MetricsListen},
		{"dscp", old.DSCP, cfg.DSCP},
		{"hook-user", old.HookUser, cfg.HookUser},
		{"manage-addresses", old.ManageAddresses, cfg.ManageAddresses},
	} {
		if c.old != c.new {
			ws = append(ws, fmt.Sprintf("%s changed (%v -> %v): it takes effect when carpd restarts", c.what, c.old, c.new))
		}
	}
	return ws
}

// controlled is the daemon as the control API serves it, with the reload
// that re-reads the file.
type controlled struct {
	*daemon.Daemon
	r *reloader
}

// ReloadConfig re-reads and applies the configuration.
func (c controlled) ReloadConfig(ctx context.Context) (api.ReloadResult, error) {
	return c.r.reload(ctx, "control")
}
