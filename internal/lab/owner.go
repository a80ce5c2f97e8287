package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// A lab whose process is killed (SIGKILL, a closed pipe, a timeout) cannot
// run Close, and its namespaces would stay. Each lab leaves a marker,
// OwnerDir/<prefix>-<id>, with its process's PID and start time; New
// deletes the namespaces of every lab of its prefix whose process is gone,
// and then its marker. The marker goes with Close.

// OwnerDir holds the labs' markers (tmpfs: gone at reboot, as the
// namespaces are).
var OwnerDir = "/run/carpd-lab"

// labID is the random part of a lab's names.
var labID = regexp.MustCompile(`^[0-9a-f]{6}$`)

// owner is this process, as a marker records it.
func owner() (string, error) {
	start, err := startTime(os.Getpid())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s\n", os.Getpid(), start), nil
}

// startTime is field 22 of /proc/PID/stat: the process's start time since
// boot, which tells it from a later process with the same PID.
func startTime(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	s := string(data)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return "", fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[end+1:]) // from field 3
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	return f[19], nil
}

// alive says whether a marker's process still runs.
func alive(marker string) bool {
	var pid int
	var start string
	if _, err := fmt.Sscanf(marker, "%d %s", &pid, &start); err != nil || pid <= 0 {
		return false
	}
	now, err := startTime(pid)
	return err == nil && now == start
}

// markerPath is the lab's marker.
func (l *Lab) markerPath() string { return filepath.Join(OwnerDir, l.prefix+"-"+l.ID) }

// mark writes the lab's marker.
func (l *Lab) mark() error {
	o, err := owner()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(OwnerDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(l.markerPath(), []byte(o), 0o644)
}

// sweep deletes the namespaces of the labs of prefix whose process is
// gone, hosts first, and their markers. A marker stays when a namespace
// could not be deleted, for the next sweep.
func sweep(prefix string) error {
	ents, err := os.ReadDir(OwnerDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var list []string // ip netns list, read once, when a lab is dead
	var errs []error
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), prefix+"-")
		if !ok || !labID.MatchString(id) {
			continue
		}
		path := filepath.Join(OwnerDir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil || alive(string(data)) {
			continue
		}
		if list == nil {
			if list, err = netnsNames(); err != nil {
				return err
			}
		}
		// The switch last: a host's namespace takes its veth with it.
		var mine []string
		sw := e.Name() + "-sw"
		for _, ns := range list {
			if strings.HasPrefix(ns, e.Name()+"-") && ns != sw {
				mine = append(mine, ns)
			}
		}
		if slices.Contains(list, sw) {
			mine = append(mine, sw)
		}
		failed := false
		for _, ns := range mine {
			if _, err := run(context.Background(), "ip", "netns", "del", ns); err != nil {
				errs = append(errs, fmt.Errorf("lab: delete the dead lab's namespace %s: %w", ns, err))
				failed = true
			}
		}
		if !failed {
			_ = os.Remove(path)
		}
	}
	return errors.Join(errs...)
}

// netnsNames lists the named network namespaces.
func netnsNames() ([]string, error) {
	out, err := run(context.Background(), "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}
