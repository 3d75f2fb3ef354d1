package zmtp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Frame flag bits (ZMTP 3.1 §2.3.3).
const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
	flagsValid  = flagMore | flagLong | flagCommand
)

// chunkSize is how much of a large frame body is allocated at a time, so
// that memory grows with what the peer actually sends and not with what it
// announces.
const chunkSize = 1 << 20

// frame is one wire frame as read from the connection.
type frame struct {
	flags byte
	body  []byte
}

func (f frame) more() bool    { return f.flags&flagMore != 0 }
func (f frame) command() bool { return f.flags&flagCommand != 0 }

// frameReader reads frames one at a time, checking every announced size
// against max before allocating anything.
type frameReader struct {
	r   *bufio.Reader
	max uint64 // largest accepted frame body
	buf []byte // scratch for frames that need not outlive the next read
	hdr [9]byte
}

// next reads one frame. With scratch set, small bodies may alias an internal
// buffer that the next call overwrites; otherwise the body is freshly
// allocated and owned by the caller.
func (fr *frameReader) next(scratch bool) (frame, error) {
	flags, size, err := fr.header()
	if err != nil {
		return frame{}, err
	}
	body, err := fr.readBody(int(size), scratch)
	if err != nil {
		return frame{}, unexpectedEOF(err)
	}
	return frame{flags: flags, body: body}, nil
}

// header reads a frame header and checks it, leaving the body unread.
func (fr *frameReader) header() (byte, uint64, error) {
	hdr := fr.hdr[:]
	if _, err := io.ReadFull(fr.r, hdr[:2]); err != nil {
		return 0, 0, err
	}
	flags := hdr[0]
	if flags&^flagsValid != 0 {
		return 0, 0, protoErr("reserved frame flag bits set (0x%02x)", flags)
	}
	if flags&flagCommand != 0 && flags&flagMore != 0 {
		return 0, 0, protoErr("command frame with MORE flag")
	}
	size := uint64(hdr[1])
	if flags&flagLong != 0 {
		if _, err := io.ReadFull(fr.r, hdr[2:9]); err != nil {
			return 0, 0, unexpectedEOF(err)
		}
		size = binary.BigEndian.Uint64(hdr[1:9])
	}
	if size > fr.max {
		return 0, 0, &sizeError{size: size, max: fr.max}
	}
	return flags, size, nil
}

func (fr *frameReader) readBody(n int, scratch bool) ([]byte, error) {
	if n <= chunkSize {
		var b []byte
		if scratch {
			if cap(fr.buf) < n {
				fr.buf = make([]byte, n, max(n, 4096))
			}
			b = fr.buf[:n]
		} else {
			b = make([]byte, n)
		}
		_, err := io.ReadFull(fr.r, b)
		return b, err
	}
	// Large frame: grow by doubling as data arrives.
	b := make([]byte, 0, chunkSize)
	for len(b) < n {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(2*cap(b), n))
			copy(nb, b)
			b = nb
		}
		k := min(cap(b), n) - len(b)
		if _, err := io.ReadFull(fr.r, b[len(b):len(b)+k]); err != nil {
			return nil, err
		}
		b = b[:len(b)+k]
	}
	return b, nil
}

// writeFrameHeader writes the flags byte and the short or long size without
// allocating.
func writeFrameHeader(w *bufio.Writer, flags byte, size int) error {
	if size > 255 {
		w.WriteByte(flags | flagLong)
		for shift := 56; shift >= 0; shift -= 8 {
			w.WriteByte(byte(uint64(size) >> shift))
		}
		return nil
	}
	w.WriteByte(flags)
	return w.WriteByte(byte(size))
}

// appendFrameHeader appends the flags byte and the short or long size.
func appendFrameHeader(b []byte, flags byte, size int) []byte {
	if size > 255 {
		b = append(b, flags|flagLong)
		return binary.BigEndian.AppendUint64(b, uint64(size))
	}
	return append(b, flags, byte(size))
}

type sizeError struct{ size, max uint64 }

func (e *sizeError) Error() string {
	return fmt.Sprintf("zmtp: frame of %d bytes exceeds the limit of %d", e.size, e.max)
}

func (e *sizeError) Unwrap() error { return ErrFrameTooLarge }

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
