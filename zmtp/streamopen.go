package zmtp

import (
	"crypto/subtle"
	"encoding/binary"
	"io"

	//lint:ignore SA1019 low-level Poly1305, deliberately (see streamseal.go)
	"golang.org/x/crypto/poly1305"
	//lint:ignore SA1019 low-level Salsa20 with an explicit block counter, deliberately
	"golang.org/x/crypto/salsa20/salsa"
)

// streamOpen reads a large CURVE MESSAGE frame of size bytes (its header
// already read) and decrypts it while it arrives: each chunk of ciphertext
// is read straight into the output buffer, added to the Poly1305 tag and
// decrypted in place. A 14 MB list therefore needs one 14 MB buffer instead
// of a ciphertext and a plaintext copy. The tag is checked at the end; a
// message that fails it is an error and its buffer is dropped.
func (c *curveCodec) streamOpen(fr *frameReader, size int) (part, error) {
	const head = 1 + len(cmdMessage) + 8 + poly1305.TagSize
	var h [head]byte
	if _, err := io.ReadFull(fr.r, h[:]); err != nil {
		return part{}, unexpectedEOF(err)
	}
	if !isCommand(h[:], cmdMessage) {
		return part{}, protoErr("expected a CURVE MESSAGE, got another command")
	}
	n := binary.BigEndian.Uint64(h[1+len(cmdMessage):])
	if n <= c.recvNonce {
		return part{}, protoErr("CURVE MESSAGE nonce %d not above %d", n, c.recvNonce)
	}
	var tag [poly1305.TagSize]byte
	copy(tag[:], h[head-poly1305.TagSize:])
	setShortNonce(&c.recvNonceBuf, c.recvPrefix, n)
	nonce := &c.recvNonceBuf

	var subKey [32]byte
	var hNonce [16]byte
	copy(hNonce[:], nonce[:16])
	salsa.HSalsa20(&subKey, &hNonce, &c.key, &salsa.Sigma)
	var counter [16]byte
	copy(counter[:8], nonce[16:])
	var block0 [64]byte
	salsa.XORKeyStream(block0[:], block0[:], &counter, &subKey)
	var polyKey [32]byte
	copy(polyKey[:], block0[:32])
	mac := poly1305.New(&polyKey)

	total := size - head // ciphertext length: flags byte and body
	if total < 1 {
		return part{}, protoErr("CURVE MESSAGE of %d bytes is too short", size)
	}
	// Grow the buffer as data arrives, so a peer that announces a large
	// frame and stalls costs what it sent, not what it announced.
	out := make([]byte, 0, min(total, chunkSize))
	readChunk := func(k int) ([]byte, error) {
		if cap(out)-len(out) < k {
			nb := make([]byte, len(out), min(max(2*cap(out), len(out)+k), total))
			copy(nb, out)
			out = nb
		}
		chunk := out[len(out) : len(out)+k]
		if _, err := io.ReadFull(fr.r, chunk); err != nil {
			return nil, unexpectedEOF(err)
		}
		out = out[:len(out)+k]
		mac.Write(chunk)
		return chunk, nil
	}
	// The first 32 bytes use the second half of block 0, the rest starts at
	// block 1 (as in streamSeal).
	first, err := readChunk(min(32, total))
	if err != nil {
		return part{}, err
	}
	for i := range first {
		first[i] ^= block0[32+i]
	}
	for off := 0; len(out) < total; off += streamChunk {
		chunk, err := readChunk(min(streamChunk, total-len(out)))
		if err != nil {
			return part{}, err
		}
		binary.LittleEndian.PutUint64(counter[8:], 1+uint64(off/64))
		salsa.XORKeyStream(chunk, chunk, &counter, &subKey)
	}
	if sum := mac.Sum(nil); subtle.ConstantTimeCompare(sum, tag[:]) != 1 {
		return part{}, protoErr("CURVE MESSAGE does not decrypt")
	}
	c.recvNonce = n
	inner := out[0]
	if inner&^(innerMore|innerCommand) != 0 {
		return part{}, protoErr("invalid flags 0x%02x inside MESSAGE", inner)
	}
	return part{more: inner&innerMore != 0, cmd: inner&innerCommand != 0, body: out[1:]}, nil
}
