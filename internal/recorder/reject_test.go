package recorder_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/recorder"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/storetest"
	"github.com/jackc/pgx/v5"
)

// refusingStore opens a store whose database refuses, through its own
// constraints, the passwords "poison" and the packets to port 666; the
// PostgreSQL one also refuses a NUL in text, as PostgreSQL does.
var refusingStore = map[string]func(t testing.TB) store.Store{
	"sqlite": func(t testing.TB) store.Store {
		path := filepath.Join(t.TempDir(), "stats.db")
		st := openDSN(t, path)
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range []string{
			`CREATE TRIGGER no_poison BEFORE INSERT ON passwords WHEN NEW.password = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END`,
			`CREATE TRIGGER no_666 BEFORE INSERT ON ports WHEN NEW.port = 666 BEGIN SELECT RAISE(ABORT, 'refused'); END`,
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		return st
	},
	"postgres": func(t testing.TB) store.Store {
		dsn := storetest.PostgresSchema(t)
		st := openDSN(t, dsn)
		ctx := context.Background()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		for _, q := range []string{
			`ALTER TABLE passwords ADD CONSTRAINT no_poison CHECK (password <> 'poison')`,
			`ALTER TABLE ports ADD CONSTRAINT no_666 CHECK (port <> 666)`,
		} {
			if _, err := c.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		return st
	},
}

// TestRefusedRowsAreIsolated: rows the database refuses are found by
// splitting the batch, dropped and counted by table and reason; every
// other row of the batch is written, and the next batches too.
func TestRefusedRowsAreIsolated(t *testing.T) {
	for name, open := range refusingStore {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			var mu sync.Mutex
			counted := map[string]int{}
			rec := recorder.New(recorder.Options{Store: st, MaxBatch: 1000, Rejected: func(table store.Table, reason string, rows int) {
				mu.Lock()
				counted[table.String()+"/"+reason] += rows
				mu.Unlock()
			}})
			now := time.Now().UnixNano()
			var evs []events.Event
			for i := range 600 {
				e := events.Event{Time: now, Type: events.TelnetLogin, Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}),
					Details: &events.Details{Username: "root", Password: "good"}}
				switch i {
				case 7, 300, 599:
					e.Details.Password = "poison"
				case 11:
					if name == "postgres" {
						e.Details.Password = "nul\x00" // as it was before events.Storable
					}
				case 42, 500:
					e.Addr = netip.Addr{} // an incident without an address
				}
				evs = append(evs, e)
				p := events.Event{Time: now, Type: events.FwlogsPacket, Addr: e.Addr, Details: &events.Details{Protocol: "TCP", LocalPort: 22}}
				if i%200 == 1 {
					p.Details.LocalPort = 666
				}
				evs = append(evs, p)
			}
			rec.Events(evs) // 600 incidents, 600 passwords, 600 ports
			ctx := context.Background()
			if err := rec.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			want := map[string]int{"passwords/constraint": 3, "incidents/invalid_value": 2, "ports/constraint": 3}
			if name == "postgres" {
				want["passwords/invalid_value"] = 1
			}
			refused := 0
			for k, n := range want {
				refused += n
				if counted[k] != n {
					t.Errorf("%s: %d rows counted, want %d (all: %v)", k, counted[k], n, counted)
				}
			}
			if len(counted) != len(want) {
				t.Errorf("counted %v, want %v", counted, want)
			}
			if s := rec.Stats(); s.Rejected != uint64(refused) || s.Inserted != uint64(1800-refused) || s.Queued != 0 || s.Failed != 0 || s.Dropped != 0 {
				t.Errorf("stats %+v, want %d rejected, %d inserted", s, refused, 1800-refused)
			}
			// A later batch: 10 logins (one poison password) and 10
			// packets (one to port 666).
			rec.Events(evs[:20])
			if err := rec.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if s := rec.Stats(); s.Inserted != uint64(1800-refused+30-2) || s.Rejected != uint64(refused+2) {
				t.Errorf("after a second batch: %+v", s)
			}
			from, to := time.Unix(0, now).Add(-time.Minute), time.Unix(0, now).Add(time.Minute)
			count := func(q store.Query) map[string]int64 {
				q.From, q.To = from, to
				rows, err := st.Query(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				out := map[string]int64{}
				for _, r := range rows {
					k := ""
					if len(r.Keys) > 0 {
						k = r.Keys[0]
					}
					out[k] = r.Value
				}
				return out
			}
			goodPw := int64(600 - 3 + 10 - 1)
			if name == "postgres" {
				goodPw--
			}
			if got := count(store.Query{Table: store.Passwords, GroupBy: []store.Dim{store.DimPassword}}); got["good"] != goodPw || got["poison"] != 0 || len(got) > 2 {
				t.Errorf("passwords %v, want %d good", got, goodPw)
			}
			if got := count(store.Query{Table: store.Incidents}); got[""] != 600-2+10 {
				t.Errorf("incidents %v, want %d", got, 600-2+10)
			}
			if got := count(store.Query{Table: store.Ports, GroupBy: []store.Dim{store.DimPort}}); got["22"] != 600-3+10-1 || got["666"] != 0 {
				t.Errorf("ports %v", got)
			}
		})
	}
}

// tcpProxy forwards a local port to a server, and can stop (closing its
// listener and every connection, as a database that goes down) and start
// again on the same port.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, addr: "127.0.0.1:0"}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) start() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(s, c); s.Close() })
			p.wg.Go(func() { io.Copy(c, s); c.Close() })
		}
	})
}

func (p *tcpProxy) stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// TestDatabaseOutageKeepsRows: while PostgreSQL cannot be reached, rows
// wait in the queue (none counted as refused, none dropped); once it is
// back they are all written.
func TestDatabaseOutageKeepsRows(t *testing.T) {
	dsn := storetest.PostgresSchema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newProxy(t, u.Host)
	u.Host = proxy.addr
	st := openDSN(t, u.String())
	rec := recorder.New(recorder.Options{Store: st, Rejected: func(store.Table, string, int) { t.Error("rows counted as refused during an outage") }})
	now := time.Now()
	batch := func(n int) []events.Event {
		evs := make([]events.Event, n)
		for i := range evs {
			evs[i] = events.Event{Time: now.UnixNano(), Type: events.SMTPLogin, Addr: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}),
				Details: &events.Details{Username: "u", Password: "p"}}
		}
		return evs
	}
	ctx := context.Background()
	rec.Events(batch(10))
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.stop() // the database goes away
	for i := range 3 {
		rec.Events(batch(5))
		err := rec.Flush(ctx)
		var re *store.RejectedError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("insert during the outage: %v", err)
		}
		if s := rec.Stats(); s.Queued != 10*(i+1) || s.Rejected != 0 || s.Dropped != 0 || s.Inserted != 20 {
			t.Fatalf("during the outage: %+v", s)
		}
	}
	proxy.start() // and comes back on the same port
	// The pool may still hold connections that died with the proxy: each
	// failed try discards one, and the rows wait for the next.
	var tries int
	for tries = 1; rec.Flush(ctx) != nil; tries++ {
		if tries == 20 {
			t.Fatalf("still failing after the database came back: %+v", rec.Stats())
		}
	}
	if s := rec.Stats(); s.Queued != 0 || s.Inserted != 20+30 || s.Rejected != 0 || s.Dropped != 0 {
		t.Fatalf("after the outage: %+v", s)
	}
	rows, err := st.Query(ctx, store.Query{Table: store.Passwords, From: now.Add(-time.Minute), To: now.Add(time.Minute)})
	if err != nil || len(rows) != 1 || rows[0].Value != 25 {
		t.Fatalf("stored passwords %v %v, want 25", rows, err)
	}
	t.Logf("written on try %d after the database came back", tries)
}

// BenchmarkFlushRefused is the price of isolating refused rows: a batch
// of 5000 rows (2500 logins) with none, one or ten that the database
// refuses, on each backend.
func BenchmarkFlushRefused(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		for _, bad := range []int{0, 1, 10} {
			b.Run(fmt.Sprintf("%s/refused=%d", name, bad), func(b *testing.B) {
				st := refusingStore[name](b)
				rec := recorder.New(recorder.Options{Store: st})
				now := time.Now().UnixNano()
				evs := make([]events.Event, 2500)
				for i := range evs {
					evs[i] = events.Event{Time: now, Type: events.TelnetLogin, Addr: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}),
						Details: &events.Details{Username: "root", Password: "good"}}
				}
				for i := range bad {
					evs[i*2500/bad+7].Details = &events.Details{Username: "root", Password: "poison"}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					rec.Events(evs)
					if err := rec.Flush(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
