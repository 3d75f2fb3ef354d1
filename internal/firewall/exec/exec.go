// Package exec is the "exec" firewall backend of dynfw-client: it runs a
// command of the user's choice and tells it every change of the blocked
// set, so that other software (a script that updates a cloud firewall, a
// router's own firewall daemon) can follow DynFW without knowing about it.
//
// Data enters through firewall.Backend: Replace and Apply change a
// file.Set held in memory and the change is written, as JSON lines, to the
// command's standard input. Data leaves the command through its standard
// output and error, which are logged line by line. The command is started
// once (by New) and kept running; it is not run once per change.
//
// # Protocol
//
// Every line is one JSON object, ending in "\n". Changes come in batches,
// each between a "begin" and a "commit" line:
//
//	{"op":"begin","kind":"replace"}      a full list follows: forget everything you have
//	{"op":"add","addr":"1.2.3.4"}
//	{"op":"add","addr":"2001:db8::/64"}
//	{"op":"commit","adds":2,"dels":0}
//	{"op":"begin","kind":"delta"}        a batch of changes follows
//	{"op":"del","addr":"1.2.3.4"}
//	{"op":"commit","adds":0,"dels":1}
//
// Addresses are written as in the file backend's plain format: single
// addresses without a length ("1.2.3.4", "2001:db8::1"), prefixes in CIDR
// notation ("10.0.0.0/8"). A command should act on a batch when it reads
// its "commit" line, whose counts are the numbers of "add" and "del" lines
// of the batch. Within a batch elements are sorted as in the plain format;
// a delta lists its "del" lines before its "add" lines. A delta never adds
// an element the command holds nor deletes one it does not hold, and empty
// deltas are not sent.
//
// The first batch a command receives is always a replace. When the client
// stops with Close(true) the command's standard input ends (EOF) and it
// should keep what it has and exit; with Close(false) an empty replace
// comes first, so a command that mirrors the set removes everything.
//
// # Failures
//
// A nil error from Replace or Apply means the batch was written to the
// pipe, not that the command acted on it. If the command exits, stops
// reading (no progress for Config.WriteTimeout) or closes its input, the
// call that notices returns an error and the command is killed if still
// there. A later call starts it again, no earlier than the backoff
// (Config.BackoffMin, doubling to Config.BackoffMax; back to the minimum
// after a run of at least BackoffMax), and sends it the whole current set
// as a replace, so that it converges whatever it missed. Restarts happen
// only in calls, never in the background. Exits are logged with their
// status.
package exec

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/file"
)

// Config describes the command to run.
type Config struct {
	// Command is the program and its arguments, run directly (no shell;
	// use {"sh", "-c", "..."} for one). A program without a slash is
	// looked up in $PATH once, by New.
	Command []string
	// WriteTimeout bounds how long writing to the command may make no
	// progress before the command is considered stuck (default 30 s).
	WriteTimeout time.Duration
	// Grace is how long Close waits for the command to exit after its
	// input ends, before killing it (default 5 s).
	Grace time.Duration
	// BackoffMin and BackoffMax bound the delay before a failed command
	// is started again (defaults 1 s and 1 min).
	BackoffMin, BackoffMax time.Duration
	// Logger receives the command's output and the backend's events.
	// Default: slog.Default().
	Logger *slog.Logger
}

var (
	// ErrNotRunning is wrapped by the errors of calls made while a failed
	// command waits for its restart.
	ErrNotRunning = errors.New("command not running")
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("exec backend: closed")
)

// pipeDrain bounds how long an exited command's output is still read: a
// background child that inherited stdout must not keep the backend waiting.
const pipeDrain = 2 * time.Second

// flushAt is how much is buffered before writing to the command: the size
// of a Linux pipe buffer, so that a write that makes no progress at all
// is one that the command is not reading.
const flushAt = 64 << 10

// Backend is the exec backend. Create it with New.
type Backend struct {
	cfg  Config
	path string // Command[0] resolved once
	name string // for logs: the base name of Command[0]
	log  *slog.Logger
	set  file.Set

	proc *process // nil while the command is not running
	// failures counts consecutive failures, for the backoff; retryAt is
	// when the next start may happen and lastErr why the command stopped.
	failures int
	retryAt  time.Time
	lastErr  error

	closed bool
	buf    []byte
	now    func() time.Time // time.Now; tests move time by hand
}

var _ firewall.Backend = (*Backend)(nil)

// process is one run of the command.
type process struct {
	cmd     *osexec.Cmd
	stdin   *os.File
	started time.Time
	// synced is set once the process received a replace; until then
	// deltas would be meaningless to it.
	synced bool
	// closing tells the waiter that an exit is expected.
	closing atomic.Bool
	// done is closed when the process has exited and its output has been
	// logged; err and exited are valid then.
	done   chan struct{}
	err    error
	exited time.Time
}

// New checks cfg, resolves the command and starts it. A command that
// cannot be found or started is an error now rather than at the first list.
func New(cfg Config) (*Backend, error) { return newWithClock(cfg, time.Now) }

// newWithClock is New with a clock that tests can move by hand.
func newWithClock(cfg Config, now func() time.Time) (*Backend, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("exec backend: no command")
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = time.Minute
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffMin)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Command = append([]string(nil), cfg.Command...)
	path, err := osexec.LookPath(cfg.Command[0])
	if err != nil {
		return nil, fmt.Errorf("exec backend: command %q: %w", cfg.Command[0], err)
	}
	b := &Backend{
		cfg:  cfg,
		path: path,
		name: filepath.Base(cfg.Command[0]),
		log:  cfg.Logger,
		now:  now,
	}
	if err := b.start(); err != nil {
		return nil, err
	}
	return b, nil
}

// Name returns "exec".
func (b *Backend) Name() string { return "exec" }

// Replace makes the set exactly e and sends it to the command as a replace.
func (b *Backend) Replace(ctx context.Context, e *firewall.Elements) error {
	if b.closed {
		return ErrClosed
	}
	b.set.Replace(e)
	return b.deliver(ctx, nil, nil)
}

// Apply changes the set and sends what changed as a delta (or the whole set
// as a replace, to a command that was restarted). After an error the set in
// memory already holds the change, and the command receives it with the
// whole set when it is restarted.
func (b *Backend) Apply(ctx context.Context, add, del *firewall.Elements) error {
	if b.closed {
		return ErrClosed
	}
	added, deleted := b.set.Apply(add, del)
	return b.deliver(ctx, added, deleted)
}

// deliver sends a delta (added, deleted), or the whole set if added is nil
// or the process has not had a replace yet, starting the command first if
// it is not running and its backoff has passed.
func (b *Backend) deliver(ctx context.Context, added, deleted *firewall.Elements) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.reap()
	if b.proc == nil {
		now := b.now()
		if wait := b.retryAt.Sub(now); wait > 0 {
			return fmt.Errorf("exec backend: %s %w (%v); next start in %v", b.name, ErrNotRunning, b.lastErr, wait.Round(time.Millisecond))
		}
		b.log.Info("exec backend: starting command again", "command", b.name, "failures", b.failures)
		if err := b.start(); err != nil {
			b.fail(now, 0, err)
			return err
		}
	}
	p := b.proc
	var err error
	switch {
	case added == nil || !p.synced:
		err = b.send(ctx, p, "replace", b.set.Elements(), nil)
	case added.Len()+deleted.Len() > 0:
		err = b.send(ctx, p, "delta", added, deleted)
	}
	if err != nil {
		// A batch cut short leaves half a line in the pipe: this process
		// cannot be used any more.
		b.kill(p)
		b.proc = nil
		b.fail(b.now(), b.now().Sub(p.started), fmt.Errorf("%w (%s)", err, status(p.err)))
		return fmt.Errorf("exec backend: %s: %w (%s)", b.name, err, status(p.err))
	}
	p.synced = true
	return nil
}

// start runs the command with a fresh pipe on its stdin.
func (b *Backend) start() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("exec backend: %w", err)
	}
	cmd := osexec.Command(b.path, b.cfg.Command[1:]...)
	cmd.Args[0] = b.cfg.Command[0]
	// An *os.File is handed to the child as is; our end stays ours, so
	// that writes can have deadlines.
	cmd.Stdin = r
	stdout := &lineLogger{log: b.log, level: slog.LevelInfo, command: b.name, stream: "stdout"}
	stderr := &lineLogger{log: b.log, level: slog.LevelWarn, command: b.name, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = pipeDrain
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("exec backend: start %s: %w", b.name, err)
	}
	r.Close()
	now := b.now
	p := &process{cmd: cmd, stdin: w, started: now(), done: make(chan struct{})}
	b.proc = p
	pid := cmd.Process.Pid
	b.log.Info("exec backend: command started", "command", b.name, "pid", pid)
	go func() {
		p.err = cmd.Wait()
		p.exited = now()
		stdout.flush()
		stderr.flush()
		level := slog.LevelWarn
		if p.closing.Load() {
			level = slog.LevelInfo
		}
		b.log.Log(context.Background(), level, "exec backend: command exited", "command", b.name, "pid", pid,
			"status", status(p.err), "uptime", p.exited.Sub(p.started).Round(time.Millisecond))
		close(p.done)
	}()
	return nil
}

// status describes how a process ended.
func status(err error) string {
	var ee *osexec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.Error()
	}
	return err.Error()
}

// reap notices a command that exited since the last call.
func (b *Backend) reap() {
	p := b.proc
	if p == nil {
		return
	}
	select {
	case <-p.done:
	default:
		return
	}
	p.stdin.Close()
	b.proc = nil
	b.fail(p.exited, p.exited.Sub(p.started), fmt.Errorf("exited: %s", status(p.err)))
}

// fail records a failure at time at, of a process that had run for uptime,
// and sets the time of the next start.
func (b *Backend) fail(at time.Time, uptime time.Duration, err error) {
	if uptime >= b.cfg.BackoffMax {
		b.failures = 0 // it ran well for a while: not a crash loop
	}
	b.failures++
	d := b.cfg.BackoffMin
	for i := 1; i < b.failures && d < b.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, b.cfg.BackoffMax)
	b.retryAt = at.Add(d)
	b.lastErr = err
	b.log.Warn("exec backend: command failed", "command", b.name, "err", err, "failures", b.failures, "restart_in", d)
}

// kill ends the process (and any children it started) and waits until it
// has been reaped.
func (b *Backend) kill(p *process) {
	p.stdin.Close()
	select {
	case <-p.done:
		return
	default:
	}
	killProcess(p.cmd.Process)
	<-p.done
}

// Close ends the command: without keep it first sends an empty replace (the
// command should remove everything), then it closes the command's stdin and
// waits up to Config.Grace for it to exit before killing it. It returns an
// error if the command had to be killed or exited with a failure status. A
// command that is not running (it failed and waits for its restart) is not
// started again just to be told.
func (b *Backend) Close(keep bool) error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.reap()
	p := b.proc
	b.proc = nil
	b.set = file.Set{}
	if p == nil {
		return nil
	}
	var errs []error
	if !keep {
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
		if err := b.send(ctx, p, "replace", &firewall.Elements{}, nil); err != nil {
			errs = append(errs, fmt.Errorf("clearing: %w", err))
		}
		cancel()
	}
	p.closing.Store(true)
	p.stdin.Close()
	timer := time.NewTimer(b.cfg.Grace)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			errs = append(errs, fmt.Errorf("%s", status(p.err)))
		}
	case <-timer.C:
		killProcess(p.cmd.Process)
		<-p.done
		errs = append(errs, fmt.Errorf("still running %v after the end of its input; killed", b.cfg.Grace))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("exec backend: %s: %w", b.name, err)
	}
	return nil
}

// send writes one batch: a replace of add (del is nil), or a delta.
func (b *Backend) send(ctx context.Context, p *process, kind string, add, del *firewall.Elements) error {
	w := &deadlineWriter{ctx: ctx, f: p.stdin, timeout: b.cfg.WriteTimeout}
	// Cancelling ctx interrupts a blocked write at once; deadlineWriter
	// checks ctx after setting each deadline, so it cannot undo this.
	stop := context.AfterFunc(ctx, func() { p.stdin.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()

	buf := append(b.buf[:0], `{"op":"begin","kind":"`...)
	buf = append(buf, kind...)
	buf = append(buf, "\"}\n"...)
	var werr error
	line := func(op string) func([]byte) error {
		return func(addr []byte) error {
			buf = append(buf, `{"op":"`...)
			buf = append(buf, op...)
			buf = append(buf, `","addr":"`...)
			buf = append(buf, addr...)
			buf = append(buf, "\"}\n"...)
			if len(buf) >= flushAt {
				_, werr = w.Write(buf)
				buf = buf[:0]
			}
			return werr
		}
	}
	// Walk stops at the first failed write and returns its error.
	if err := file.Walk(del, line("del")); err != nil {
		return err
	}
	if err := file.Walk(add, line("add")); err != nil {
		return err
	}
	buf = append(buf, `{"op":"commit","adds":`...)
	buf = strconv.AppendInt(buf, int64(add.Len()), 10)
	buf = append(buf, `,"dels":`...)
	buf = strconv.AppendInt(buf, int64(del.Len()), 10)
	buf = append(buf, "}\n"...)
	_, err := w.Write(buf)
	b.buf = buf[:0]
	return err
}

// deadlineWriter writes to the command's pipe with a fresh deadline for
// every chunk, so a slow command that keeps reading is fine and one that
// stopped reading fails after timeout.
type deadlineWriter struct {
	ctx     context.Context
	f       *os.File
	timeout time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if err := w.f.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, fmt.Errorf("writing to its input: %w", err)
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.f.Write(p)
	// The *PathError would name the pipe "|1", which tells a reader nothing.
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case err == nil:
	case w.ctx.Err() != nil:
		err = w.ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("no progress writing to its input for %v: %w", w.timeout, err)
	default:
		err = fmt.Errorf("writing to its input: %w", err)
	}
	return n, err
}
