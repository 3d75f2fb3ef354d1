package lograte

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	var g Gate
	now := time.Unix(1000, 0)
	if ok, n := g.Allow(now, time.Second); !ok || n != 0 {
		t.Fatal("first line refused")
	}
	for i := 0; i < 3; i++ {
		if ok, _ := g.Allow(now.Add(time.Duration(i)*100*time.Millisecond), time.Second); ok {
			t.Fatal("a line within the interval passed")
		}
	}
	if ok, n := g.Allow(now.Add(time.Second), time.Second); !ok || n != 3 {
		t.Fatalf("after the interval: %v, %d suppressed", ok, n)
	}
}

func TestLimiterLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var l Limiter
	for i := 0; i < 5; i++ {
		l.Log(log, slog.LevelWarn, "bad_topic", "dropped", slog.String("reason", "bad_topic"), slog.Int("len", 3))
		l.Log(log, slog.LevelWarn, "malformed", "dropped", slog.String("reason", "malformed"))
	}
	out := buf.String()
	if strings.Count(out, "reason=bad_topic") != 1 || strings.Count(out, "reason=malformed") != 1 || !strings.Contains(out, "len=3") {
		t.Fatalf("log:\n%s", out)
	}
	l.gates.Range(func(_, g any) bool { g.(*Gate).next.Store(0); return true }) // the interval passes
	l.Log(log, slog.LevelWarn, "malformed", "dropped", slog.String("reason", "malformed"))
	if out = buf.String(); !strings.Contains(out, "suppressed=4") {
		t.Fatalf("log:\n%s", out)
	}
	// A disabled level neither logs nor consumes the interval.
	var q Limiter
	q.Log(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})), slog.LevelInfo, "k", "m")
	if ok, _ := q.Allow("k"); !ok {
		t.Fatal("a disabled level used the gate")
	}
}
