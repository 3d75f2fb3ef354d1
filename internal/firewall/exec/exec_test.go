package exec

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/firewall"

	"github.com/dynfw/sentinel/internal/testenv"
)

// logBuffer collects log output written from several goroutines.
type logBuffer = testenv.Buffer

// clock is a fake time source for the backoff; the waiter goroutines read
// it too.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(1000, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// start returns a backend running cmd, with its log and fake clock.
func start(t *testing.T, cfg Config, cmd ...string) (*Backend, *logBuffer, *clock) {
	t.Helper()
	logs := &logBuffer{}
	clk := &clock{}
	cfg.Command = cmd
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := newWithClock(cfg, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close(true)
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	})
	return b, logs, clk
}

// waitExit waits until the running process has exited by itself.
func waitExit(t *testing.T, b *Backend) {
	t.Helper()
	select {
	case <-b.proc.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not exit")
	}
}

func elems(t testing.TB, items ...string) *firewall.Elements {
	t.Helper()
	e := &firewall.Elements{}
	for _, s := range items {
		if !strings.Contains(s, "/") {
			s += "/128"
			if !strings.Contains(s, ":") {
				s = strings.TrimSuffix(s, "/128") + "/32"
			}
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		e.Add(p)
	}
	return e
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestProtocol runs `cat` into a file and checks the exact lines.
func TestProtocol(t *testing.T) {
	ctx := context.Background()
	type call struct {
		replace  bool
		add, del []string
	}
	tests := []struct {
		name  string
		calls []call
		keep  bool
		want  string
	}{
		{"brief example", []call{
			{replace: true, add: []string{"2001:db8::/64", "1.2.3.4"}},
			{del: []string{"1.2.3.4"}},
		}, true, `{"op":"begin","kind":"replace"}
{"op":"add","addr":"1.2.3.4"}
{"op":"add","addr":"2001:db8::/64"}
{"op":"commit","adds":2,"dels":0}
{"op":"begin","kind":"delta"}
{"op":"del","addr":"1.2.3.4"}
{"op":"commit","adds":0,"dels":1}
`},
		{"sorted, dels first, empty deltas not sent", []call{
			{replace: true, add: []string{"10.0.0.1", "9.9.9.9", "::1", "10.0.0.0/8"}},
			{},
			{add: []string{"2001:db8::1", "1.1.1.1"}, del: []string{"10.0.0.0/8", "9.9.9.9"}},
			{add: []string{"1.1.1.1"}, del: []string{"8.8.8.8"}}, // breaks the caller's guarantee: nothing changes
		}, true, `{"op":"begin","kind":"replace"}
{"op":"add","addr":"9.9.9.9"}
{"op":"add","addr":"10.0.0.1"}
{"op":"add","addr":"::1"}
{"op":"add","addr":"10.0.0.0/8"}
{"op":"commit","adds":4,"dels":0}
{"op":"begin","kind":"delta"}
{"op":"del","addr":"9.9.9.9"}
{"op":"del","addr":"10.0.0.0/8"}
{"op":"add","addr":"1.1.1.1"}
{"op":"add","addr":"2001:db8::1"}
{"op":"commit","adds":2,"dels":2}
`},
		{"apply before replace sends a replace", []call{
			{add: []string{"1.1.1.1"}},
			{add: []string{"2.2.2.2"}},
		}, true, `{"op":"begin","kind":"replace"}
{"op":"add","addr":"1.1.1.1"}
{"op":"commit","adds":1,"dels":0}
{"op":"begin","kind":"delta"}
{"op":"add","addr":"2.2.2.2"}
{"op":"commit","adds":1,"dels":0}
`},
		{"close without keep clears", []call{
			{replace: true, add: []string{"1.1.1.1"}},
		}, false, `{"op":"begin","kind":"replace"}
{"op":"add","addr":"1.1.1.1"}
{"op":"commit","adds":1,"dels":0}
{"op":"begin","kind":"replace"}
{"op":"commit","adds":0,"dels":0}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			b, _, _ := start(t, Config{}, "sh", "-c", `exec cat > "$1"`, "sh", out)
			for _, c := range tt.calls {
				var err error
				if c.replace {
					err = b.Replace(ctx, elems(t, c.add...))
				} else {
					err = b.Apply(ctx, elems(t, c.add...), elems(t, c.del...))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Close(tt.keep); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, out); got != tt.want {
				t.Errorf("the command read:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// onceScript appends "start" and every line it reads to $1, and exits
// with status 3 after the first commit.
const onceScript = `echo start >> "$1"
while IFS= read -r line; do
	printf '%s\n' "$line" >> "$1"
	case $line in *'"commit"'*) exit 3;; esac
done`

// TestRestartReplays: a command that exits after its first batch is
// restarted after the backoff and receives the whole set again.
func TestRestartReplays(t *testing.T) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "out")
	b, logs, clk := start(t, Config{BackoffMin: time.Second, BackoffMax: 4 * time.Second}, "sh", "-c", onceScript, "sh", out)
	if err := b.Replace(ctx, elems(t, "1.1.1.1", "2.2.2.2")); err != nil {
		t.Fatal(err)
	}
	waitExit(t, b)

	// The exit is noticed; the change is kept, the start waits 1 s.
	err := b.Apply(ctx, elems(t, "3.3.3.3"), elems(t, "1.1.1.1"))
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "next start in 1s") {
		t.Fatalf("Apply after the exit: %v", err)
	}
	if !strings.Contains(logs.String(), `msg="exec backend: command exited" command=sh`) || !strings.Contains(logs.String(), `status="exit status 3"`) {
		t.Errorf("exit not logged:\n%s", logs)
	}
	clk.advance(999 * time.Millisecond)
	if err := b.Apply(ctx, nil, nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Apply before the backoff: %v", err)
	}
	clk.advance(time.Millisecond)
	if err := b.Apply(ctx, nil, nil); err != nil {
		t.Fatalf("Apply after the backoff: %v", err)
	}
	waitExit(t, b)
	want := `start
{"op":"begin","kind":"replace"}
{"op":"add","addr":"1.1.1.1"}
{"op":"add","addr":"2.2.2.2"}
{"op":"commit","adds":2,"dels":0}
start
{"op":"begin","kind":"replace"}
{"op":"add","addr":"2.2.2.2"}
{"op":"add","addr":"3.3.3.3"}
{"op":"commit","adds":2,"dels":0}
`
	if got := readFile(t, out); got != want {
		t.Errorf("the command read:\n%s\nwant:\n%s", got, want)
	}

	// It keeps failing at once: the backoff doubles up to BackoffMax.
	for _, wait := range []string{"2s", "4s", "4s"} {
		err := b.Apply(ctx, nil, nil)
		if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "next start in "+wait) {
			t.Fatalf("want a start in %s: %v", wait, err)
		}
		d, _ := time.ParseDuration(wait)
		clk.advance(d)
		if err := b.Apply(ctx, nil, nil); err != nil {
			t.Fatal(err)
		}
		waitExit(t, b)
	}

	// A run of BackoffMax or more resets the backoff.
	b.proc.started = b.proc.exited.Add(-4 * time.Second)
	if err := b.Apply(ctx, nil, nil); !strings.Contains(err.Error(), "next start in 1s") {
		t.Fatalf("after a long run: %v", err)
	}
}

// TestIdleExit: a command that exited long before the next call is started
// again by that call, which succeeds.
func TestIdleExit(t *testing.T) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "out")
	b, _, clk := start(t, Config{}, "sh", "-c", onceScript, "sh", out)
	if err := b.Replace(ctx, elems(t, "1.1.1.1")); err != nil {
		t.Fatal(err)
	}
	waitExit(t, b)
	clk.advance(time.Hour)
	if err := b.Apply(ctx, elems(t, "2.2.2.2"), nil); err != nil {
		t.Fatal(err)
	}
	waitExit(t, b)
	if got := readFile(t, out); !strings.HasSuffix(got, "start\n"+`{"op":"begin","kind":"replace"}
{"op":"add","addr":"1.1.1.1"}
{"op":"add","addr":"2.2.2.2"}
{"op":"commit","adds":2,"dels":0}
`) {
		t.Errorf("the command read:\n%s", got)
	}
}

// TestBrokenInput: a command that closes its stdin fails the call with
// EPIPE at once and is killed, children included.
func TestBrokenInput(t *testing.T) {
	ctx := context.Background()
	b, logs, _ := start(t, Config{}, "sh", "-c", `exec 0<&-; echo closed; sleep 60 & wait`)
	pid := b.proc.cmd.Process.Pid
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "line=closed"); {
		if time.Now().After(deadline) {
			t.Fatal("the command did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	err := b.Replace(ctx, elems(t, "1.1.1.1"))
	if !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Replace: %v, want EPIPE", err)
	}
	if b.proc != nil {
		t.Error("the process is still in use")
	}
	if n := liveInGroup(t, pid); n > 0 {
		t.Errorf("%d processes of the command's group still run", n)
	}
}

// liveInGroup counts the processes of group pgid that are not zombies
// (killed children wait for init to reap them, which in a container may be
// never).
func liveInGroup(t *testing.T, pgid int) int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		t.Skip("no /proc")
	}
	n := 0
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces.
		i := bytes.LastIndexByte(data, ')')
		fields := strings.Fields(string(data[i+1:]))
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			n++
		}
	}
	return n
}

// TestNeverReads: a command that does not read makes the call fail after
// WriteTimeout, without hanging.
func TestNeverReads(t *testing.T) {
	b, _, _ := start(t, Config{WriteTimeout: 200 * time.Millisecond}, "sleep", "60")
	e := &firewall.Elements{}
	for i := range uint32(100_000) { // several megabytes: more than a pipe holds
		e.Addr4 = append(e.Addr4, i)
	}
	t0 := time.Now()
	err := b.Replace(context.Background(), e)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "no progress") {
		t.Fatalf("Replace: %v, want a timeout", err)
	}
	if !strings.Contains(err.Error(), "signal: killed") {
		t.Errorf("error does not say the command was killed: %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("Replace took %v", d)
	}
}

// TestContextCanceled: the caller's context interrupts a blocked write.
func TestContextCanceled(t *testing.T) {
	b, _, _ := start(t, Config{WriteTimeout: time.Minute}, "sleep", "60")
	e := &firewall.Elements{}
	for i := range uint32(100_000) {
		e.Addr4 = append(e.Addr4, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if err := b.Replace(ctx, e); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Replace: %v, want the context's error", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("Replace took %v", d)
	}
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := b.Apply(canceled, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a canceled context: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "script")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cmd     []string
		want    string
		wantErr error
	}{
		{"empty", nil, "no command", nil},
		{"not in PATH", []string{"dynfw-no-such-command", "x"}, `command "dynfw-no-such-command"`, osexec.ErrNotFound},
		{"no such file", []string{filepath.Join(dir, "missing")}, "missing", fs.ErrNotExist},
		{"not executable", []string{noexec}, "permission denied", fs.ErrPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Command: tt.cmd})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("New: %v, want errors.Is %v", err, tt.wantErr)
			}
		})
	}
}

// TestOutputLogged: stdout and stderr reach the log one line each, a last
// line without newline included.
func TestOutputLogged(t *testing.T) {
	b, logs, _ := start(t, Config{}, "sh", "-c", `echo hello; echo 'bad "thing"' >&2; cat >/dev/null; printf 'no newline'`)
	if err := b.Replace(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`level=INFO msg="exec backend: output" command=sh stream=stdout line=hello`,
		`level=WARN msg="exec backend: output" command=sh stream=stderr line="bad \"thing\""`,
		`level=INFO msg="exec backend: output" command=sh stream=stdout line="no newline"`,
		`level=INFO msg="exec backend: command exited" command=sh`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestLineLogger(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"lines", []string{"a\nb\n"}, []string{"a", "b"}},
		{"split writes", []string{"ab", "c\nd", "e\n"}, []string{"abc", "de"}},
		{"crlf and empty", []string{"a\r\n\n"}, []string{"a", ""}},
		{"unterminated", []string{"x\ny"}, []string{"x", "y"}},
		{"long", []string{strings.Repeat("z", maxLine+10) + "\n"}, []string{strings.Repeat("z", maxLine), strings.Repeat("z", 10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			h := slogFunc(func(r slog.Record) {
				r.Attrs(func(a slog.Attr) bool {
					if a.Key == "line" {
						got = append(got, a.Value.String())
					}
					return true
				})
			})
			l := &lineLogger{log: slog.New(h)}
			for _, w := range tt.writes {
				if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			l.flush()
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("lines %q, want %q", got, tt.want)
			}
		})
	}
}

// slogFunc is a handler that passes every record to a function.
type slogFunc func(slog.Record)

func (slogFunc) Enabled(context.Context, slog.Level) bool        { return true }
func (f slogFunc) Handle(_ context.Context, r slog.Record) error { f(r); return nil }
func (f slogFunc) WithAttrs([]slog.Attr) slog.Handler            { return f }
func (f slogFunc) WithGroup(string) slog.Handler                 { return f }

// TestCloseKills: a command that ignores the end of its input is killed
// after the grace period, children included.
func TestCloseKills(t *testing.T) {
	b, _, _ := start(t, Config{Grace: 200 * time.Millisecond}, "sh", "-c", `cat >/dev/null; sleep 60 & wait`)
	if err := b.Replace(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	pid := b.proc.cmd.Process.Pid
	t0 := time.Now()
	err := b.Close(true)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Close: %v, want an error saying the command was killed", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if n := liveInGroup(t, pid); n > 0 {
		t.Errorf("%d processes of the command's group still run", n)
	}
	if err := b.Replace(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Replace after Close: %v", err)
	}
	if err := b.Close(true); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseStatus(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   string
	}{
		{"clean", `cat >/dev/null`, ""},
		{"failure status", `cat >/dev/null; exit 2`, "exit status 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, _ := start(t, Config{}, "sh", "-c", tt.script)
			err := b.Close(true)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Close: %v, want %q", err, tt.want)
			}
		})
	}
	// A command that already failed and waits for its restart is not
	// started by Close.
	b, _, _ := start(t, Config{}, "sh", "-c", "exit 1")
	waitExit(t, b)
	if err := b.Close(false); err != nil {
		t.Errorf("Close of an exited command: %v", err)
	}
}

// BenchmarkReplace1M sends a million addresses through `cat > /dev/null`.
func BenchmarkReplace1M(b *testing.B) {
	be, err := New(Config{Command: []string{"sh", "-c", "exec cat > /dev/null"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close(true)
	e := &firewall.Elements{}
	for i := range uint32(1_000_000) {
		e.Addr4 = append(e.Addr4, i*4099)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := be.Replace(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
}
