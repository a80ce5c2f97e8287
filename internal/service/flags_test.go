package service

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefaultConfig: with no file given, carpd reads carpd.toml if it
// exists, else rc.conf (as rc.conf lines), else it refuses with a usage
// error naming both. (The default paths are swapped for a temporary
// directory's.)
func TestDefaultConfig(t *testing.T) {
	for _, tc := range []struct {
		name           string
		files          []string
		config, rcConf string
		err            string
	}{
		{name: "both", files: []string{"carpd.toml", "rc.conf"}, config: "carpd.toml"},
		{name: "toml", files: []string{"carpd.toml"}, config: "carpd.toml"},
		{name: "rc.conf", files: []string{"rc.conf"}, rcConf: "rc.conf"},
		{name: "none", err: "no configuration: neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			paths := [2]string{filepath.Join(dir, "carpd.toml"), filepath.Join(dir, "rc.conf")}
			saved := defaultConfigs
			defaultConfigs = paths
			defer func() { defaultConfigs = saved }()
			f, err := ParseFlags(nil, io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), paths[1]) {
					t.Fatalf("err = %v, want one containing %q and %s", err, tc.err, paths[1])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := func(name string) string {
				if name == "" {
					return ""
				}
				return filepath.Join(dir, name)
			}
			if f.Config != want(tc.config) || f.RCConf != want(tc.rcConf) {
				t.Errorf("config %q, rc-conf %q; want %q, %q", f.Config, f.RCConf, want(tc.config), want(tc.rcConf))
			}
		})
	}
}

// TestGivenConfigWins: a file given on the command line is read, whatever
// exists in /etc/carpd.
func TestGivenConfigWins(t *testing.T) {
	for _, args := range [][]string{
		{"--config", "/x/a.toml"}, {"--rc-conf", "/x/rc.conf"}, {"--check-config", "/x/a.toml"},
	} {
		f, err := ParseFlags(args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if got := f.Config + f.RCConf + f.CheckConfig; got != args[1] {
			t.Errorf("%v: reads %q", args, got)
		}
	}
	if _, err := ParseFlags([]string{"--config", "/x/a.toml", "--rc-conf", "/x/rc.conf"}, io.Discard); err == nil {
		t.Error("--config and --rc-conf together were accepted")
	}
}
