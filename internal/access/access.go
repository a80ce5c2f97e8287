// Package access tells whether a user can use the files a configuration
// names as the kernel would decide it, so that `carpd --check`, run as
// root, finds what the service's unprivileged user will meet: a file it
// cannot read, a directory it cannot search, a program it cannot execute,
// a path the unit's sandbox hides.
//
// The decision (Check) is pure: it takes what stat(2) said of each
// directory on the way and of the file, and the user. The adapter (Stat,
// CheckFiles, LookupUser) does the stats and the user lookups.
package access

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
)

// Node is what stat(2) said of one file or directory.
type Node struct {
	Path string
	// Err is stat's error (fs.ErrNotExist, ...); the rest is unset then.
	Err      error
	Mode     fs.FileMode // type and permission bits
	UID, GID int
	// Owner and Group name UID and GID (the numbers when unnamed), for
	// the messages.
	Owner, Group string
	// Script says that the file starts with "#!": its interpreter reads
	// it, so that executing it needs read permission too.
	Script bool
}

// User is the user whose access is checked.
type User struct {
	Name     string
	UID, GID int
	// Groups are the supplementary groups (initgroups(3): systemd gives
	// a unit's User= its groups from /etc/group).
	Groups []int
	// GroupName is the name of GID, for the fixes.
	GroupName string
}

// Permission bits asked for, as in access(2).
const (
	read    fs.FileMode = 4
	execute fs.FileMode = 1 // of a file; search, of a directory
)

// may reports whether u may access n with the permission bits want, as
// Linux's generic_permission decides: the owner's bits for the owner, the
// group's for a member of the file's group, the others' for the rest.
// Root reads and searches everything and executes a file with an execute
// bit for someone (CAP_DAC_OVERRIDE).
func (u *User) may(n Node, want fs.FileMode) bool {
	perm := n.Mode.Perm()
	if u.UID == 0 {
		return want&execute == 0 || n.Mode.IsDir() || perm&0o111 != 0
	}
	var bits fs.FileMode
	switch {
	case u.UID == n.UID:
		bits = perm >> 6
	case u.GID == n.GID || slices.Contains(u.Groups, n.GID):
		bits = perm >> 3
	default:
		bits = perm
	}
	return bits&want == want
}

// Kind is what carpd does with a target.
type Kind int

const (
	// Config is the configuration file: read; the documented way for one
	// holding a password is root:carpd 0640.
	Config Kind = iota
	// Password is a password file: read; it must be carpd's own, mode
	// 0600 or 0400 (config.checkPasswordFile).
	Password
	// Program is a hook or an exec check's program: executed, and read
	// by its interpreter when it is a script.
	Program
)

// Target is a file to check.
type Target struct {
	Path string
	// What names the file in messages: "configuration file", "password
	// file", "upscript", "exec check".
	What string
	// Origin is where the configuration names it: "file:line", a flag,
	// or the configuration file itself.
	Origin string
	Kind   Kind
}

// Hidden is a directory a unit's sandbox hides from the service.
type Hidden struct {
	Dir     string
	Setting string // the unit's setting that hides it
}

// Unit is what carpd's packaged unit (packaging/carpd.service) hides:
// ProtectHome=yes makes /home, /root and /run/user empty and inaccessible,
// PrivateTmp=yes gives the service /tmp and /var/tmp of its own.
var Unit = []Hidden{
	{"/home", "ProtectHome=yes"}, {"/root", "ProtectHome=yes"}, {"/run/user", "ProtectHome=yes"},
	{"/tmp", "PrivateTmp=yes"}, {"/var/tmp", "PrivateTmp=yes"},
}

// Problem is one thing that stops the user from using a target.
type Problem struct {
	Origin string
	Msg    string
}

// Error formats p as `ORIGIN: MSG`.
func (p Problem) Error() string { return p.Origin + ": " + p.Msg }

// Check returns what stops u from using t. chain holds what stat(2) said
// of each directory on the way to the file, from "/" down, then of the
// file itself (its Path the path with the symbolic links resolved). hidden
// are the directories the service's sandbox hides.
func Check(t Target, chain []Node, u *User, hidden []Hidden) []Problem {
	var out []Problem
	report := func(format string, args ...any) {
		out = append(out, Problem{t.Origin, fmt.Sprintf("%s %s: ", t.What, t.Path) + fmt.Sprintf(format, args...)})
	}
	if len(chain) == 0 {
		return nil
	}
	file := chain[len(chain)-1]
	for _, h := range hidden {
		if under(t.Path, h.Dir) || under(file.Path, h.Dir) {
			report("under %s, which the unit's %s hides from the service; move it (to /etc/carpd or /usr/local/sbin, say)", h.Dir, h.Setting)
			return out
		}
	}
	for _, d := range chain[:len(chain)-1] {
		switch {
		case d.Err != nil:
			report("%s: %v", d.Path, cause(d.Err))
			return out
		case !d.Mode.IsDir():
			report("%s is not a directory", d.Path)
			return out
		case !u.may(d, execute):
			report("user %s cannot search the directory %s (%s); fix: chgrp %s %s; chmod g+x %s",
				u.Name, d.Path, describe(d), u.GroupName, d.Path, d.Path)
			return out
		}
	}
	switch {
	case file.Err != nil:
		report("%v", cause(file.Err))
	case !file.Mode.IsRegular():
		report("not a regular file")
	case t.Kind == Program && file.Mode.Perm()&0o111 == 0:
		report("not executable (%s); fix: chmod 0755 %s", describe(file), t.Path)
	case t.Kind == Program && !u.may(file, execute):
		report("user %s cannot execute it (%s); fix: chmod 0755 %s", u.Name, describe(file), t.Path)
	case t.Kind == Program && file.Script && !u.may(file, read):
		report("user %s cannot read it, and a script's interpreter must (%s); fix: chmod 0755 %s", u.Name, describe(file), t.Path)
	case t.Kind == Config && !u.may(file, read):
		report("user %s cannot read it (%s); fix: chown root:%s %s; chmod 0640 %s", u.Name, describe(file), u.GroupName, t.Path, t.Path)
	case t.Kind == Password && !u.may(file, read):
		report("user %s cannot read it (%s); fix: chown %s %s; chmod 0600 %s", u.Name, describe(file), u.Name, t.Path, t.Path)
	}
	return out
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	path = filepath.Clean(path)
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// describe gives the mode and owner of n: "mode 0600, owner root:root".
func describe(n Node) string {
	return fmt.Sprintf("mode %04o, owner %s:%s", n.Mode.Perm(), n.Owner, n.Group)
}

// cause words a stat error without repeating the path.
func cause(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
