package emit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest/mqtt"
	"github.com/dynfw/sentinel/internal/scoring"
	"github.com/dynfw/sentinel/internal/server"
	"github.com/dynfw/sentinel/internal/server/core"
	"github.com/dynfw/sentinel/internal/testenv"
)

// startServer runs a real server on local ports, subscribed to the MQTT
// broker under root when root is set.
func startServer(t *testing.T, broker, root string) *server.Server {
	t.Helper()
	cfg := server.Config{DataDir: t.TempDir(), DynfwListen: []string{"tcp://127.0.0.1:0"}, IngestListen: []string{"tcp://127.0.0.1:0"},
		Scoring: scoring.DefaultConfig(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if root != "" {
		cfg.MQTT = mqtt.Config{URL: broker, Root: root}
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return srv
}

// probeEvents waits until the probe named name has n events.
func probeEvents(t *testing.T, srv *server.Server, match func(events.Probe) bool, n uint64) core.ProbeStat {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, p := range srv.Core().ProbeStats() {
			if match(p.Probe) && p.Events >= n {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no probe with %d events: %+v", n, srv.Core().ProbeStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeliverZMQ: a scan over the probe ingest reaches the server's
// detector.
func TestDeliverZMQ(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "", "")
	_, big := ScanTargets()
	msgs, err := Messages(Spec{Event: events.FwlogsPacket, Addr: attacker, Count: 1, Targets: big}, time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	z, err := DialZMQ(context.Background(), "tcp://"+srv.IngestAddrs()[0].String(), nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := z.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	z.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ex, ok := srv.Core().Explain(attacker)
		if ok && ex.Counts["fwlogs_big_port_scan"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no big scan: %+v", ex)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeliverMQTT: through a broker, as sentinel-proxy, the events belong
// to the router's serial and token.
func TestDeliverMQTT(t *testing.T) {
	t.Parallel()
	const broker = "127.0.0.1:1883"
	if c, err := net.DialTimeout("tcp", broker, 2*time.Second); err != nil {
		testenv.Skip(t, fmt.Sprintf("needs an MQTT broker on %s (apt-get install mosquitto): %v", broker, err))
	} else {
		c.Close()
	}
	root := "test/emit-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/sentinel/collect"
	srv := startServer(t, "tcp://"+broker, root)
	token, _ := devicetoken.Generate()
	msgs, err := Messages(Spec{Event: events.SSHLoginFailed, Addr: attacker, Count: 3, Username: "admin", Serial: "0000000D300012AB", Token: token}, time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	q, err := DialMQTT("tcp://"+broker, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	q.Root = root
	defer q.Close()
	// The server subscribes in the background: send until it hears.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := q.Send(context.Background(), msgs[0]); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range srv.Core().ProbeStats() {
			found = found || p.Serial == "0000000D300012AB" && p.Events > 0
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server heard nothing from the broker")
		}
		time.Sleep(50 * time.Millisecond)
	}
	p := probeEvents(t, srv, func(p events.Probe) bool { return p.Serial == "0000000D300012AB" }, 1)
	if p.Token != token {
		t.Fatalf("probe %+v", p)
	}
}
