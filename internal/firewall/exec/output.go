package exec

import (
	"bytes"
	"context"
	"log/slog"
)

// maxLine bounds one logged line: a command that prints without newlines
// must not make the client buffer without limit. Longer lines are logged
// in pieces.
const maxLine = 4096

// lineLogger is an io.Writer that logs every line written to it. os/exec
// copies one output stream of the command into it from one goroutine, and
// flush is called after that goroutine has finished, so it needs no lock.
type lineLogger struct {
	log             *slog.Logger
	level           slog.Level
	command, stream string
	partial         []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxLine - len(l.partial); len(chunk) > room {
			l.partial = append(l.partial, chunk[:room]...)
			l.emit()
			p = p[room:]
			continue
		}
		l.partial = append(l.partial, chunk...)
		if i < 0 {
			break
		}
		l.emit()
		p = p[i+1:]
	}
	return n, nil
}

// flush logs a last line that had no newline.
func (l *lineLogger) flush() {
	if len(l.partial) > 0 {
		l.emit()
	}
}

func (l *lineLogger) emit() {
	line := bytes.TrimSuffix(l.partial, []byte("\r"))
	l.log.Log(context.Background(), l.level, "exec backend: output", "command", l.command, "stream", l.stream, "line", string(line))
	l.partial = l.partial[:0]
}
