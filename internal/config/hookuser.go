package config

// This file holds --check's verdict on hook-user under the unit carpd is
// shipped with, and the words --check prints about the sandbox hooks run
// in (see carpd(8), HOOKS).

import (
	"cmp"
	"fmt"
	"os"
	"os/user"
)

// HookHost is what CheckHookUser needs to know of the host.
type HookHost struct {
	// ServiceUser is the user carpd runs as under its unit ("carpd");
	// "root" (or "") when carpd runs as root.
	ServiceUser string
	// HelperInstalled says whether the root hook helper can be reached:
	// its socket exists, or carpd-hook.socket is installed.
	HelperInstalled bool
	// UserExists reports whether the system knows a user (name or uid).
	UserExists func(name string) bool
}

func isRootUser(name string) bool { return name == "" || name == "root" || name == "0" }

// CheckHookUser refuses a hook-user that cannot work when carpd runs as
// h.ServiceUser: another user than root when carpd is unprivileged (the
// unit's NoNewPrivileges and capabilities leave no setuid), root when
// carpd is not root and the root hook helper is not installed, a user the
// system does not know.
func CheckHookUser(c *Config, h HookHost) error {
	u := c.HookUser
	if u == "" {
		return nil
	}
	at := cmp.Or(c.HookUserOrigin, "hook-user")
	switch {
	case isRootUser(h.ServiceUser) && !isRootUser(u) && h.UserExists != nil && !h.UserExists(u):
		return fmt.Errorf("%s: hook-user %q: no such user", at, u)
	case isRootUser(h.ServiceUser) || u == h.ServiceUser:
		return nil
	case isRootUser(u) && !h.HelperInstalled:
		return fmt.Errorf(`%s: hook-user = "root": carpd runs as %s, which cannot become root, and the root hook helper is not installed (carpd-hook.socket, /run/carpd-hook.sock); install and start carpd-hook.socket, or run carpd as root`, at, h.ServiceUser)
	case isRootUser(u):
		return nil
	}
	return fmt.Errorf(`%s: hook-user %q: carpd runs as %s with NoNewPrivileges and without CAP_SETUID, and cannot run hooks as another user; leave hook-user out (hooks run as %s) or set hook-user = "root" (the root hook helper runs them)`,
		at, u, h.ServiceUser, h.ServiceUser)
}

// HookSandbox says, for --check, which sandbox the hooks of c run in when
// carpd runs as serviceUser under its unit; "" when c has no hook.
func HookSandbox(c *Config, serviceUser string) string {
	if !c.hasHooks() {
		return ""
	}
	switch {
	case isRootUser(serviceUser):
		return "hooks run as " + cmp.Or(c.HookUser, "root") + " (carpd runs as root: no sandbox of the unit applies)"
	case c.HookUser != "" && isRootUser(c.HookUser):
		return "hooks run as root in the root hook helper (carpd-hook@.service): root's privileges, none of carpd's sandbox; they end with the helper"
	}
	return "hooks run as " + serviceUser + " inside carpd's sandbox (the unit's NoNewPrivileges=yes, no capabilities, ProtectSystem=strict: / read-only but /run/carpd and /var/lib/carpd, " +
		"ProtectHome=yes, PrivateTmp=yes, PrivateDevices=yes): they cannot add addresses, restart services or write files; set hook-user = \"root\" for that"
}

// hasHooks reports whether any vhid of c has a hook.
func (c *Config) hasHooks() bool {
	for i := range c.VHIDs {
		h := c.HooksOf(&c.VHIDs[i])
		if h.Devd != "" || h.UpScript != "" || h.DownScript != "" || h.Notify != "" ||
			len(h.NotifyMaster)+len(h.NotifyBackup)+len(h.NotifyFault)+len(h.NotifyStop) > 0 {
			return true
		}
	}
	return false
}

// HookHostOf returns the HookHost of this machine for carpd running as
// serviceUser, with the root hook helper at socket.
func HookHostOf(serviceUser, socket string) HookHost {
	installed := false
	for _, p := range []string{socket, "/etc/systemd/system/carpd-hook.socket", "/usr/lib/systemd/system/carpd-hook.socket", "/lib/systemd/system/carpd-hook.socket"} {
		if _, err := os.Stat(p); err == nil {
			installed = true
		}
	}
	return HookHost{ServiceUser: serviceUser, HelperInstalled: installed, UserExists: func(name string) bool {
		if _, err := user.Lookup(name); err == nil {
			return true
		}
		_, err := user.LookupId(name)
		return err == nil
	}}
}
