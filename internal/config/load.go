package config

// This file holds what the file loaders (LoadTOML, LoadRCConf) add to the
// parsers: the file is opened with an error that says how to fix its
// permissions, its content is compared with the format its name chose
// (sniff), and a configuration without a vhid is refused. carpd's start and
// its --check-config go through the loaders, so that they refuse the same
// files with the same messages.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"

	fileaccess "github.com/carpd/carpd/internal/access"
)

// format is the format a configuration file is read as.
type format int

const (
	formatTOML   format = iota // carpd's TOML (a name ending in .toml)
	formatRCConf               // a FreeBSD rc.conf (any other name, or --rc-conf)
)

func (f format) String() string {
	if f == formatTOML {
		return "carpd TOML"
	}
	return "a FreeBSD rc.conf"
}

// readConfig reads the configuration file path. A permission refused names
// the user carpd runs as and what to change: the directory it cannot
// search, or the file, which the documented way gives to carpd's group
// (chown root:carpd FILE; chmod 0640 FILE).
func readConfig(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("load config: %w: carpd runs as %s: %s", err, describeUID(os.Geteuid()), permissionFix(path))
	}
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return data, nil
}

// permissionFix says what keeps this process from reading the file path
// and how to fix it, as `carpd --check` would.
func permissionFix(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	u, err := fileaccess.LookupUser(strconv.Itoa(os.Geteuid()))
	if err != nil {
		u = &fileaccess.User{Name: strconv.Itoa(os.Geteuid()), UID: os.Geteuid(), GID: os.Getegid(), GroupName: groupName(os.Getegid())}
	}
	t := fileaccess.Target{Path: abs, What: "configuration file", Origin: path, Kind: fileaccess.Config}
	problems := fileaccess.Check(t, fileaccess.Stat(abs), u, nil)
	if len(problems) == 0 {
		return fmt.Sprintf("it cannot read the file; fix: chown root:%s %s; chmod 0640 %s", u.GroupName, path, path)
	}
	// The problem without the file's name, which the error has.
	_, msg, _ := strings.Cut(problems[0].Msg, abs+": ")
	return msg
}

// groupName returns the name of gid, or the number when it has none.
func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

// rcConfLine is a FreeBSD rc.conf ifconfig variable: what no carpd TOML
// file holds.
var rcConfLine = regexp.MustCompile(`^\s*(ifconfig_[A-Za-z0-9_]+)\s*=`)

// tomlKey is a TOML key: bare or quoted.
const tomlKey = `(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')`

// tomlHeader is a TOML table header, [table] or [[array]]: what no shell
// line is ("[ -r FILE ]", a test, has blanks between its words, which a
// dotted key cannot have).
var tomlHeader = regexp.MustCompile(`^\s*\[\[?\s*` + tomlKey + `(?:\s*\.\s*` + tomlKey + `)*\s*\]\]?\s*(?:#.*)?$`)

// tomlAssignment is a TOML key = value line, with its key.
var tomlAssignment = regexp.MustCompile(`^\s*([A-Za-z0-9_-]+)\s*=`)

// sniff refuses a file whose content is in the other format than the one
// its name chose: an ifconfig_ variable in a file read as TOML, a table
// header or one of carpd's TOML keys (in a file that is valid TOML) in a
// file read as rc.conf. Without it an rc.conf parser skips a TOML file as
// lines that are not ifconfig variables, and finds no vhid.
func sniff(name string, data []byte, as format) error {
	lines := strings.Split(string(data), "\n")
	if as == formatTOML {
		for i, l := range lines {
			if m := rcConfLine.FindStringSubmatch(l); m != nil {
				return &Error{File: name, Line: i + 1, Word: m[1], Msg: fmt.Sprintf(
					"read as %v (the name ends in .toml), but this looks like %v: pass it with --rc-conf, or give it a name that does not end in .toml",
					formatTOML, formatRCConf)}
			}
		}
		return nil
	}
	validTOML := toml.Unmarshal(data, new(map[string]any)) == nil
	for i, l := range lines {
		word := ""
		if tomlHeader.MatchString(l) {
			word = strings.TrimSpace(l)
		} else if m := tomlAssignment.FindStringSubmatch(l); m != nil && validTOML && isTOMLKey(m[1]) {
			word = m[1]
		}
		if word != "" {
			return &Error{File: name, Line: i + 1, Word: word, Msg: fmt.Sprintf(
				"read as %v, but this looks like %v: name it *.toml or pass --config with a .toml name",
				formatRCConf, formatTOML)}
		}
	}
	return nil
}

// isTOMLKey reports whether key is one of carpd's TOML keys, at any level.
func isTOMLKey(key string) bool {
	switch key {
	case "vhid", "check", "hook", "upscript", "downscript", "notify", "xparam":
		return true
	}
	return globalKeys[key] || vhidKeys[key]
}

// checkLoaded refuses a configuration carpd cannot run although each of its
// lines is good: one without a vhid (an empty file, only comments, an
// rc.conf without carp lines).
func checkLoaded(name string, cfg *Config, as format) error {
	if len(cfg.VHIDs) > 0 {
		return nil
	}
	hint := "add a [[vhid]] table (see carpd.toml(5))"
	if as == formatRCConf {
		hint = "no ifconfig_<iface>_alias<N> line has a vhid"
	}
	return &Error{File: name, Msg: "no vhid configured: " + hint}
}
