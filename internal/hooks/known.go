package hooks

// The root hook helper's memory: the root hooks of every configuration
// carpd registered since boot. The helper checks a request against the
// configuration file as it is now, and also against these, so that the
// down scripts a running carpd calls for the configuration it loaded (at
// its exit, or a removed vhid's bow-out after a reload) still run after
// the file was edited. What is recorded is what the helper itself read as
// root at the register, never what carpd sends.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// DefaultHelperState is where the helper records the registered
// configurations (in a directory only root may enter; /run is gone at
// reboot).
const DefaultHelperState = "/run/carpd-hook/known.json"

// HelperStatePath is the helper's record: $CARPD_HOOK_STATE, else
// DefaultHelperState.
func HelperStatePath() string {
	if p := os.Getenv("CARPD_HOOK_STATE"); p != "" {
		return p
	}
	return DefaultHelperState
}

// MaxKnown is how many registered configurations the helper keeps; the
// oldest is dropped beyond it.
const MaxKnown = 16

// maxKnownFile bounds the record the helper reads.
const maxKnownFile = 16 << 20

// KnownConfig is the root hooks of one registered configuration.
type KnownConfig struct {
	Hooks []KnownHook `json:"hooks"`
}

// KnownHook is one vhid's hooks in a KnownConfig.
type KnownHook struct {
	VHID      uint8   `json:"vhid"`
	Interface string  `json:"iface"`
	Scripts   Scripts `json:"scripts"`
}

// knownFile is the record's format.
type knownFile struct {
	Configs []KnownConfig `json:"configs"` // oldest first
}

// KnownOf returns the hooks of scripts (as ScriptsOf gives them) in a
// fixed order.
func KnownOf(scripts map[Key]Scripts) KnownConfig {
	var c KnownConfig
	for k, s := range scripts {
		c.Hooks = append(c.Hooks, KnownHook{VHID: k.VHID, Interface: k.Interface, Scripts: s})
	}
	slices.SortFunc(c.Hooks, func(a, b KnownHook) int {
		return cmp.Or(cmp.Compare(a.VHID, b.VHID), cmp.Compare(a.Interface, b.Interface))
	})
	return c
}

// scripts returns c as ScriptsOf gives a configuration's hooks.
func (c KnownConfig) scripts() map[Key]Scripts {
	m := make(map[Key]Scripts, len(c.Hooks))
	for _, h := range c.Hooks {
		m[Key{h.VHID, h.Interface}] = h.Scripts
	}
	return m
}

// Remember returns known with c as the newest configuration: an equal one
// recorded before moves to the end, and only the last MaxKnown stay.
func Remember(known []KnownConfig, c KnownConfig) []KnownConfig {
	enc, _ := json.Marshal(c)
	out := slices.DeleteFunc(slices.Clone(known), func(o KnownConfig) bool {
		e, _ := json.Marshal(o)
		return bytes.Equal(e, enc)
	})
	out = append(out, c)
	if len(out) > MaxKnown {
		out = out[len(out)-MaxKnown:]
	}
	return out
}

// LoadKnown reads the record at path: none when it does not exist.
func LoadKnown(path string) ([]KnownConfig, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var k knownFile
	dec := json.NewDecoder(io.LimitReader(f, maxKnownFile))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k.Configs, nil
}

// RegisterKnown records c as the newest configuration in the record at
// path (Remember), one helper at a time: the directory (created mode
// 0700) is locked, the record written crash-safely.
func RegisterKnown(path string, c KnownConfig) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	known, err := LoadKnown(path)
	if err != nil {
		// A record that cannot be read is replaced: it allowed nothing.
		known = nil
	}
	data, err := json.Marshal(knownFile{Configs: Remember(known, c)})
	if err != nil {
		return err
	}
	return writeFileSynced(d, path, append(data, '\n'))
}

// writeFileSynced writes data to path through a temporary file synced and
// renamed over it, then syncs the directory d.
func writeFileSynced(d *os.File, path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".known-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Chmod(0o600), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return d.Sync()
}
