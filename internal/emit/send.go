package emit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/ingest/mqtt"
	"github.com/dynfw/sentinel/zmtp"
)

// ErrUnreachable is wrapped by the errors of a Sender that could not reach
// its server.
var ErrUnreachable = errors.New("cannot reach the server")

// Sender delivers messages to a server.
type Sender interface {
	// Send delivers m and returns how many of its events the server took:
	// all of them once written, on the paths without an answer (ZMQ,
	// MQTT), since Messages has checked them with the server's parser.
	Send(ctx context.Context, m Message) (int, error)
	// Close flushes what is queued and disconnects.
	Close() error
}

// ZMQ is a Sender to a probe ingest (ZeroMQ PUSH), as a probe.
type ZMQ struct {
	sock     *zmtp.Socket
	endpoint string
	lost     chan zmtp.Event // the connection ended
}

// DialZMQ connects to the probe ingest at endpoint and waits, at most
// timeout, for the handshake: a PUSH socket connects in the background,
// so without the wait an absent server would only show as a send that
// never ends. serverKey, when set, is the server's CURVE public key (an
// ingest started with --ingest-curve).
func DialZMQ(ctx context.Context, endpoint string, serverKey *[32]byte, timeout time.Duration) (*ZMQ, error) {
	events := make(chan zmtp.Event, 16)
	opts := zmtp.Options{Linger: 5 * time.Second, DialTimeout: timeout, HandshakeTimeout: timeout,
		OnEvent: func(e zmtp.Event) {
			select {
			case events <- e:
			default:
			}
		}}
	if serverKey != nil {
		opts.Curve = &zmtp.CurveOptions{ServerKey: *serverKey}
	}
	sock, err := zmtp.NewSocket(zmtp.PUSH, opts)
	if err != nil {
		return nil, err
	}
	if err := sock.Dial(endpoint); err != nil {
		sock.Close()
		return nil, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			sock.Close()
			return nil, fmt.Errorf("%w at %s: no answer within %v", ErrUnreachable, endpoint, timeout)
		case e := <-events:
			switch e.Type {
			case zmtp.EventConnected:
				return &ZMQ{sock: sock, endpoint: endpoint, lost: events}, nil
			case zmtp.EventConnectFailed:
				sock.Close()
				return nil, fmt.Errorf("%w at %s: %v (is sentinel run running, listening there with --ingest-listen?)", ErrUnreachable, endpoint, e.Err)
			case zmtp.EventHandshakeFailed:
				sock.Close()
				hint := ""
				if serverKey == nil {
					hint = " (an ingest with --ingest-curve needs the server's certificate: --cert <data>/dynfw.key)"
				}
				return nil, fmt.Errorf("%w at %s: the handshake failed: %s%s", ErrUnreachable, endpoint, e.Reason, hint)
			}
		}
	}
}

// Send queues m and returns its events.
func (z *ZMQ) Send(ctx context.Context, m Message) (int, error) {
	select {
	case e := <-z.lost:
		if e.Type == zmtp.EventDisconnected {
			return 0, fmt.Errorf("%s closed the connection: %s", z.endpoint, e.Reason)
		}
	default:
	}
	if err := z.sock.Send(ctx, zmtp.Message{[]byte("sentinel/collect/" + m.Suffix), m.Payload}); err != nil {
		return 0, fmt.Errorf("%s: %w", z.endpoint, err)
	}
	return m.Events, nil
}

// Close writes what is queued (for up to 5 s) and disconnects.
func (z *ZMQ) Close() error { return z.sock.Close() }

// MQTT is a Sender to a broker, as sentinel-proxy publishes a router's
// messages: the server must be subscribed to the broker (--mqtt-url).
type MQTT struct {
	client paho.Client
	broker string
	// Root replaces the topic root sentinel/collect, for a server
	// subscribed under another (mqtt.Config.Root).
	Root string
}

// DialMQTT connects to broker ("tcp://127.0.0.1:1883") within timeout.
func DialMQTT(broker string, timeout time.Duration) (*MQTT, error) {
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("sentinel-emit-%d", time.Now().UnixNano())).
		SetConnectTimeout(timeout).SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(timeout) {
		c.Disconnect(0)
		return nil, fmt.Errorf("%w: MQTT broker %s: no answer within %v", ErrUnreachable, broker, timeout)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("%w: MQTT broker %s: %v", ErrUnreachable, broker, err)
	}
	return &MQTT{client: c, broker: broker}, nil
}

// Send publishes m with QoS 1 and waits for the broker's acknowledgement.
func (q *MQTT) Send(ctx context.Context, m Message) (int, error) {
	topic := m.Topic
	if q.Root != "" {
		if rest, ok := strings.CutPrefix(topic, mqtt.DefaultRoot+"/"); ok {
			topic = q.Root + "/" + rest
		}
	}
	tok := q.client.Publish(topic, 1, false, m.Payload)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return 0, fmt.Errorf("MQTT broker %s: %w", q.broker, err)
	}
	return m.Events, nil
}

// Close disconnects.
func (q *MQTT) Close() error {
	q.client.Disconnect(250)
	return nil
}

// Control is a Sender on the operator's control channel: the server
// answers how many events it took, and takes each entry's ts as the
// event's time.
type Control struct {
	C *control.Client
}

// Send hands m to the server and returns the events it took; an error
// carries the server's reasons when it refused any.
func (c Control) Send(ctx context.Context, m Message) (int, error) {
	topic := m.Topic // a device's
	if topic == "sentinel/collect/"+m.Suffix {
		topic = m.Suffix
	}
	res, err := c.C.Emit(ctx, control.EmitRequest{Topic: topic, Payload: m.Payload})
	if err != nil {
		return 0, err
	}
	if res.Refused > 0 {
		why := ""
		if len(res.Errors) > 0 {
			why = ": " + res.Errors[0]
		}
		return res.Accepted, fmt.Errorf("the server refused %d of %d events%s", res.Refused, m.Events, why)
	}
	return res.Accepted, nil
}

// Close does nothing: each Send is one request.
func (Control) Close() error { return nil }
