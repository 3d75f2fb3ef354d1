package netlink

import (
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/dynfw/sentinel/internal/firewall/netns"
	"golang.org/x/sys/unix"
)

// Config tells Dial how to open a Conn.
type Config struct {
	// Name starts the messages of errors that reach the backend's caller
	// unwrapped ("nftables", "ipset").
	Name string
	// NetNS is an open descriptor of the network namespace to work in;
	// 0 means the current one.
	NetNS int
	// RequireExtAck makes Dial fail on a kernel without NETLINK_CAP_ACK
	// and NETLINK_EXT_ACK. Without it the options are used where the
	// kernel has them: errors are then small (no echo of the request)
	// and name the rejected attribute.
	RequireExtAck bool
	// RecvBuffer and SendBuffer are the socket buffer sizes to ask for
	// (SO_RCVBUFFORCE, which needs CAP_NET_ADMIN, else SO_RCVBUF, which
	// net.core.rmem_max caps; the same for sending). 0 keeps the
	// system's default.
	RecvBuffer, SendBuffer int
	// MaxAnswer is the largest datagram the kernel may send; 64 KiB if 0.
	MaxAnswer int
	// Timeout bounds the wait for an answer; 30 s if 0. It is a safety
	// net only: the kernel handles a request within the sendmsg call, so
	// its answers are queued when we read.
	Timeout time.Duration
	// Errno turns an error number from the kernel (negative, as sent)
	// and the extended ack's message into the error Query returns. The
	// default returns the unix.Errno, with the message in parentheses.
	Errno func(code int32, msg string) error
}

// Conn is a NETLINK_NETFILTER socket. It is not safe for concurrent use.
type Conn struct {
	fd      int
	name    string
	pid     uint32 // our port id
	seq     uint32 // the last sequence number used
	sndbuf  int    // send buffer size set by GrowSendBuffer
	rbuf    []byte
	timeout time.Duration
	errno   func(int32, string) error
}

// Dial opens a socket in the configured network namespace.
func Dial(cfg Config) (*Conn, error) {
	fd := -1
	err := netns.Do(cfg.NetNS, func() (err error) {
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		return err
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("%s: netlink socket: %w", cfg.Name, err)
	}
	c := &Conn{fd: fd, name: cfg.Name, timeout: cfg.Timeout, errno: cfg.Errno}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	if c.errno == nil {
		c.errno = defaultErrno
	}
	c.rbuf = make([]byte, max(cfg.MaxAnswer, 64<<10))
	if err := c.setup(cfg); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	return c, nil
}

func (c *Conn) setup(cfg Config) error {
	// CAP_ACK: errors do not echo the failing request (up to 64 KiB
	// each); EXT_ACK: the kernel says which attribute it rejected.
	for _, o := range []int{unix.NETLINK_CAP_ACK, unix.NETLINK_EXT_ACK} {
		if err := unix.SetsockoptInt(c.fd, unix.SOL_NETLINK, o, 1); err != nil && cfg.RequireExtAck {
			return fmt.Errorf("netlink socket option %d: %w", o, err)
		}
	}
	if cfg.RecvBuffer > 0 {
		_ = c.setBuffer(unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, cfg.RecvBuffer)
	}
	if cfg.SendBuffer > 0 {
		_ = c.setBuffer(unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, cfg.SendBuffer)
	}
	tv := unix.NsecToTimeval(c.timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("netlink receive timeout: %w", err)
	}
	if err := unix.Bind(c.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	sa, err := unix.Getsockname(c.fd)
	if err != nil {
		return fmt.Errorf("netlink getsockname: %w", err)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return errors.New("netlink getsockname: not a netlink address")
	}
	c.pid = nl.Pid
	return nil
}

// setBuffer sets a socket buffer size, with the FORCE option (which
// passes the sysctl limit; nfnetlink needs CAP_NET_ADMIN anyway) or else
// the plain one.
func (c *Conn) setBuffer(force, plain, n int) error {
	if unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, force, n) == nil {
		return nil
	}
	return unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, plain, n)
}

func defaultErrno(code int32, msg string) error {
	if msg != "" {
		return fmt.Errorf("%w (%s)", unix.Errno(-code), msg)
	}
	return unix.Errno(-code)
}

// Close closes the socket.
func (c *Conn) Close() error {
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

// NextSeq returns a new sequence number. Numbers wrap around; compare
// them by difference.
func (c *Conn) NextSeq() uint32 {
	c.seq++
	return c.seq
}

// SendBuffer returns the socket's send buffer size as the kernel reports
// it (twice what was set: the kernel counts its bookkeeping in). A single
// sendmsg may carry up to this less 32 bytes.
func (c *Conn) SendBuffer() (int, error) {
	return unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
}

// GrowSendBuffer makes the send buffer at least n bytes, for a message
// of n bytes less some room: the kernel takes a batch only within one
// message.
func (c *Conn) GrowSendBuffer(n int) error {
	if n <= c.sndbuf {
		return nil
	}
	if err := c.setBuffer(unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, n); err != nil {
		return err
	}
	c.sndbuf = n
	return nil
}

// Send sends b (one or more messages) with one sendmsg. The kernel
// handles the messages within the call and queues its answers.
func (c *Conn) Send(b []byte) error {
	for {
		err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err != unix.EINTR {
			return err
		}
	}
}

// Receive reads the kernel's answers, datagram after datagram, and
// yields every message addressed to this socket. It yields an error, and
// ends, when reading fails, when no answer comes within the timeout or
// when a datagram is malformed; otherwise it goes on until the caller
// stops. A message's Body is valid until the caller goes on to the next.
func (c *Conn) Receive() iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for {
			n, err := c.recv()
			if err != nil {
				yield(Message{}, err)
				return
			}
			for m, err := range Messages(c.rbuf[:n]) {
				if err != nil {
					yield(m, err)
					return
				}
				if m.PortID != c.pid && m.PortID != 0 {
					continue
				}
				if !yield(m, nil) {
					return
				}
			}
		}
	}
}

// recv reads one datagram into c.rbuf.
func (c *Conn) recv() (int, error) {
	for {
		n, _, flags, _, err := unix.Recvmsg(c.fd, c.rbuf, nil, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, fmt.Errorf("no netlink answer within %v: %w", c.timeout, err)
		case err != nil:
			// ENOBUFS: the kernel dropped answers; what became of
			// the requests is unknown.
			return 0, fmt.Errorf("netlink receive: %w", err)
		case flags&unix.MSG_TRUNC != 0:
			return 0, fmt.Errorf("netlink message larger than %d bytes", len(c.rbuf))
		}
		return n, nil
	}
}

// Drain discards answers left in the socket, such as acks delivered after
// a batch-wide error, so that the next request starts clean.
func (c *Conn) Drain() {
	for {
		_, _, err := unix.Recvfrom(c.fd, c.rbuf, unix.MSG_DONTWAIT)
		if err != nil && err != unix.EINTR {
			return
		}
	}
}

// ErrDumpInterrupted means a dump saw a concurrent change (the kernel set
// NLM_F_DUMP_INTR), so what it returned may be inconsistent: read again.
var ErrDumpInterrupted = errors.New("dump interrupted by a concurrent change")

// Query sends one request, a GET or a dump, whose sequence number is seq,
// and calls fn for each data message answering it until the kernel's ack
// or NLMSG_DONE. An error from the kernel is returned as Config.Errno
// makes it; fn's first error or ErrDumpInterrupted is returned once the
// answer has been read to its end, and fn is not called after it.
func (c *Conn) Query(req []byte, seq uint32, fn func(Message) error) error {
	if err := c.Send(req); err != nil {
		return fmt.Errorf("netlink send of %d bytes: %w", len(req), err)
	}
	var ferr error
	for m, err := range c.Receive() {
		if err != nil {
			c.Drain()
			return err
		}
		if m.Seq != seq {
			continue // a late answer to an earlier request
		}
		if m.Type == unix.NLMSG_ERROR || m.Type == unix.NLMSG_DONE {
			a, ok := ParseAck(m)
			if !ok {
				return errors.New("short netlink error message")
			}
			if a.Error != 0 {
				return c.errno(a.Error, a.Msg)
			}
			break
		}
		if m.Flags&unix.NLM_F_DUMP_INTR != 0 && ferr == nil {
			ferr = ErrDumpInterrupted // read on to the end
		}
		if ferr == nil {
			ferr = fn(m)
		}
	}
	return ferr
}
