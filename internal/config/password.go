package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// A password file must be private to carpd, as OpenSSH wants of a private
// key: owned by root or by the user carpd runs as, with no permission at
// all for its group or for others (mode 0600 or 0400). A file that others
// can read gives the pass phrase away; one that others can write lets
// them choose it. carpd refuses both, naming the file, its mode or owner
// and the command that puts it right.
//
// When carpd runs as root it also accepts a file owned by the system user
// carpd, the user the packaged service runs as (packaging/carpd.sysusers):
// `sudo carpd --check-config` then agrees with the service about the file
// the service reads. Root reads any file; the service's user can read only
// its own, since a root-owned 0600 file is closed to it.

// serviceUser is the system user of the packaged service
// (packaging/carpd.service: User=carpd).
const serviceUser = "carpd"

// serviceUID returns the uid of serviceUser; ok is false when there is no
// such user. A variable for the tests.
var serviceUID = func() (uid int, ok bool) {
	u, err := user.Lookup(serviceUser)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(u.Uid)
	return n, err == nil
}

// passwordFileMode is the permission bits a password file may have: the
// owner's; none for its group or others.
const passwordFileMode fs.FileMode = 0o700

// checkPasswordFile refuses a password file, described by fi (from fstat
// of the open file), that is not private to carpd.
func checkPasswordFile(path string, fi fs.FileInfo) error {
	euid := os.Geteuid()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		owner := int(st.Uid)
		if !ownerAllowed(owner, euid) {
			allowed := "neither root nor carpd's user (" + describeUID(euid) + ")"
			if euid == 0 {
				allowed = "not root"
				if _, ok := serviceUID(); ok {
					allowed = "neither root nor the service's user " + serviceUser
				}
			}
			return fmt.Errorf("password file %s is owned by %s, %s; fix: chown %s %s",
				path, describeUID(owner), allowed, userName(euid), path)
		}
	}
	if perm := fi.Mode().Perm(); perm&^passwordFileMode != 0 {
		who := "its group and others"
		switch {
		case perm&0o007 == 0:
			who = "its group"
		case perm&0o070 == 0:
			who = "others"
		}
		return fmt.Errorf("password file %s has mode %04o: %s may %s it (it must be 0600 or 0400); fix: chmod 600 %s",
			path, perm, who, access(perm), path)
	}
	return nil
}

// ownerAllowed reports whether a password file owned by owner may be read
// by carpd running as euid.
func ownerAllowed(owner, euid int) bool {
	if owner == 0 || owner == euid {
		return true
	}
	if euid != 0 {
		return false
	}
	uid, ok := serviceUID()
	return ok && owner == uid
}

// access names what the group and others may do with a file of mode perm.
func access(perm fs.FileMode) string {
	r, w := perm&0o044 != 0, perm&0o022 != 0
	switch {
	case r && w:
		return "read and write"
	case r:
		return "read"
	case w:
		return "write"
	}
	return "execute"
}

// describeUID names a uid: "uid 998 (carpd)", or "uid 998" when it has no
// name.
func describeUID(uid int) string {
	if name := userName(uid); name != strconv.Itoa(uid) {
		return fmt.Sprintf("uid %d (%s)", uid, name)
	}
	return "uid " + strconv.Itoa(uid)
}

// userName returns the name of uid, or the number when it has none.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// passwordReadError explains an error opening the password file path: for
// a permission refused, who carpd runs as and how the file should be
// owned.
func passwordReadError(path string, err error) error {
	if !errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("cannot read the password: %w", err)
	}
	euid := os.Geteuid()
	return fmt.Errorf("cannot read the password: %w (carpd runs as %s: give the file to it, mode 0600; fix: chown %s %s)",
		err, describeUID(euid), userName(euid), path)
}
