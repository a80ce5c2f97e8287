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
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
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
// the user carpd runs as and the documented way to give it the file
// (ConfigFix).
func readConfig(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrPermission) {
		uid, gid := os.Geteuid(), os.Getegid()
		return nil, fmt.Errorf("load config: %w: carpd runs as %s, which cannot read it; fix: %s",
			err, describeUID(uid), ConfigFix(path, groupName(gid)))
	}
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return data, nil
}

// ConfigFix is the command that gives the configuration file path to the
// group group (carpd's) and keeps it from others, the documented way for a
// file that holds a password: owned by root, readable by carpd's group.
func ConfigFix(path, group string) string {
	return fmt.Sprintf("chown root:%s %s; chmod 0640 %s", group, path, path)
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
