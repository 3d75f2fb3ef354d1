package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"

	"github.com/dynfw/sentinel/internal/client"
	"github.com/dynfw/sentinel/internal/msgpack"
)

// printMessages writes every message as {"topic":...,"payload":...}, one per
// line, the payload's keys in the order received, until ctx ends or output
// fails. It always returns the error that stopped it.
func printMessages(ctx context.Context, conn *client.Conn, stdout io.Writer, log *slog.Logger) error {
	w := bufio.NewWriter(stdout)
	var line []byte
	for {
		m, err := conn.Recv(ctx)
		if err != nil {
			return err
		}
		if len(m) != 2 {
			log.Warn("ignoring message", "frames", len(m), "reason", "DynFW messages have two frames")
			continue
		}
		line = append(line[:0], `{"topic":`...)
		line, _ = msgpack.AppendJSON(line, msgpack.AppendStringBytes(nil, m[0]))
		line = append(line, `,"payload":`...)
		out, err := msgpack.AppendJSON(line, m[1])
		if err != nil {
			log.Warn("ignoring message", "topic", string(m[0]), "reason", err)
			continue
		}
		line = append(out, "}\n"...)
		if _, err := w.Write(line); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}
