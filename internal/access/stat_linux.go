package access

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LookupUser returns the user name (or uid) with its groups.
func LookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return nil, err
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s: uid %q, gid %q are not numbers", name, u.Uid, u.Gid)
	}
	out := &User{Name: u.Username, UID: uid, GID: gid, GroupName: groupName(gid)}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("user %s: groups: %w", name, err)
	}
	for _, s := range ids {
		if g, err := strconv.Atoi(s); err == nil {
			out.Groups = append(out.Groups, g)
		}
	}
	return out, nil
}

// Stat returns what Check needs of path: a node for each directory on the
// way, from "/" down (those of the path as written, then those of the path
// with its symbolic links resolved, when that differs), and the file's
// node last, named by the resolved path. A directory that cannot be
// stat'ed ends the chain: its node, then the file's with the same error.
func Stat(path string) []Node {
	path = filepath.Clean(path)
	var chain []Node
	seen := map[string]bool{}
	dirs := func(p string) bool {
		for _, d := range parents(p) {
			if seen[d] {
				continue
			}
			seen[d] = true
			n := stat(d)
			chain = append(chain, n)
			if n.Err != nil {
				chain = append(chain, Node{Path: path, Err: n.Err})
				return false
			}
		}
		return true
	}
	if !dirs(path) {
		return chain
	}
	resolved := path
	if r, err := filepath.EvalSymlinks(path); err == nil {
		resolved = r
		if !dirs(r) {
			return chain
		}
	}
	n := stat(path)
	n.Path = resolved
	return append(chain, n)
}

// parents returns the directories above path, from "/" down.
func parents(path string) []string {
	var out []string
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		out = append([]string{d}, out...)
		if d == "/" || d == "." {
			return out
		}
	}
}

// stat stats path, following symbolic links, and names its owner.
func stat(path string) Node {
	fi, err := os.Stat(path)
	if err != nil {
		return Node{Path: path, Err: err}
	}
	n := Node{Path: path, Mode: fi.Mode(), Owner: "?", Group: "?"}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		n.UID, n.GID = int(st.Uid), int(st.Gid)
		n.Owner, n.Group = userName(n.UID), groupName(n.GID)
	}
	if fi.Mode().IsRegular() {
		n.Script = isScript(path)
	}
	return n
}

// isScript reports whether the file path starts with "#!".
func isScript(path string) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [2]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && bytes.Equal(b[:], []byte("#!"))
}

// CheckFiles checks each target as u meets it (Check, after Stat), and
// returns every problem, each reported once (a directory two targets
// share is reported at the first).
func CheckFiles(targets []Target, u *User, hidden []Hidden) []Problem {
	var out []Problem
	seen := map[string]bool{}
	for _, t := range targets {
		for _, p := range Check(t, Stat(t.Path), u, hidden) {
			// The part after the file's name says what is wrong.
			_, what, _ := strings.Cut(p.Msg, ": ")
			if strings.Contains(what, "directory") {
				if seen[what] {
					continue
				}
				seen[what] = true
			}
			out = append(out, p)
		}
	}
	return out
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}
