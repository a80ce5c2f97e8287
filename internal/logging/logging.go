// Package logging makes carpd's log handler: slog's text format on
// stderr, or, when stderr is the journal's stream (systemd sets
// JOURNAL_STREAM=DEV:INODE to the stream it connects stderr to, see
// systemd.exec(5)), the same lines without time= and prefixed by their
// syslog priority, "<4>level=WARN msg=...", which journald strips and
// records as the entry's PRIORITY (sd-daemon(3)'s SD_WARNING): so
// `journalctl -p warning` finds carpd's warnings, and the journal's own
// timestamp is not repeated.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// NewHandler returns the handler writing to w: the journal's format when
// w is the stream named by $JOURNAL_STREAM, slog's text format otherwise.
func NewHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	if f, ok := w.(*os.File); ok && IsJournalStream(f, os.Getenv("JOURNAL_STREAM")) {
		return NewJournalHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// IsJournalStream reports whether f is the stream journalStream
// ("DEV:INODE", $JOURNAL_STREAM) names. go-systemd's
// journal.StderrIsJournalStream does the same for file descriptor 2 only.
func IsJournalStream(f *os.File, journalStream string) bool {
	if journalStream == "" {
		return false
	}
	var dev, ino uint64
	if _, err := fmt.Sscanf(journalStream, "%d:%d", &dev, &ino); err != nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// Priority is the syslog priority of a level: debug 7, info 6, warning
// 4, error 3.
func Priority(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return 7
	case l < slog.LevelWarn:
		return 6
	case l < slog.LevelError:
		return 4
	}
	return 3
}

// NewJournalHandler returns a handler that writes slog's text format
// without the time, each line prefixed by "<N>", N its syslog priority.
func NewJournalHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	o := slog.HandlerOptions{}
	if opts != nil {
		o = *opts
	}
	replace := o.ReplaceAttr
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		if replace != nil {
			return replace(groups, a)
		}
		return a
	}
	pw := &prefixWriter{w: w}
	return &journalHandler{pw: pw, h: slog.NewTextHandler(pw, &o)}
}

// journalHandler is a text handler whose one write per record the
// prefixWriter prefixes with the record's priority.
type journalHandler struct {
	pw *prefixWriter
	h  slog.Handler
}

// prefixWriter prefixes each write with the priority of the record being
// written; mu holds the priority and the write together.
type prefixWriter struct {
	mu   sync.Mutex
	w    io.Writer
	prio int
	buf  []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = fmt.Appendf(p.buf[:0], "<%d>", p.prio)
	p.buf = append(p.buf, b...)
	if _, err := p.w.Write(p.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (j *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return j.h.Enabled(ctx, l)
}

func (j *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	j.pw.mu.Lock()
	defer j.pw.mu.Unlock()
	j.pw.prio = Priority(r.Level)
	return j.h.Handle(ctx, r)
}

func (j *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{pw: j.pw, h: j.h.WithAttrs(as)}
}

func (j *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{pw: j.pw, h: j.h.WithGroup(name)}
}
