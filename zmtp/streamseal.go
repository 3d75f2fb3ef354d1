package zmtp

import (
	"bufio"
	"encoding/binary"
	"sync"

	// NaCl's secretbox is built from these two primitives; using them
	// directly lets us seal large messages without buffering them.
	//lint:ignore SA1019 low-level Poly1305, deliberately
	"golang.org/x/crypto/poly1305"
	//lint:ignore SA1019 low-level Salsa20 with an explicit block counter, deliberately
	"golang.org/x/crypto/salsa20/salsa"
)

// streamChunk is the unit of the two-pass seal; a multiple of the 64-byte
// Salsa20 block.
const streamChunk = 64 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, streamChunk); return &b }}

// streamSeal writes hdr followed by exactly what box.SealAfterPrecomputation
// would produce for the message inner||body, without holding the ciphertext:
// the first pass computes the Poly1305 tag, which NaCl puts in front of the
// ciphertext, and the second pass encrypts again while writing. It costs a
// second Salsa20 pass over large messages and keeps a publisher's memory
// per connection at one chunk, however many subscribers receive a large list
// at the same time.
func streamSeal(w *bufio.Writer, hdr []byte, inner byte, body []byte, nonce *[24]byte, key *[32]byte) error {
	var subKey [32]byte
	var hNonce [16]byte
	copy(hNonce[:], nonce[:16])
	salsa.HSalsa20(&subKey, &hNonce, key, &salsa.Sigma)
	var counter [16]byte
	copy(counter[:8], nonce[16:])
	var block0 [64]byte
	salsa.XORKeyStream(block0[:], block0[:], &counter, &subKey)
	var polyKey [32]byte
	copy(polyKey[:], block0[:32])

	// The first 32 bytes of the message use the second half of block 0;
	// everything after starts at block 1, so chunks stay block aligned.
	n := min(32, 1+len(body))
	var first [32]byte
	first[0] = inner
	copy(first[1:n], body)
	for i := 0; i < n; i++ {
		first[i] ^= block0[32+i]
	}
	rest := body[n-1:]

	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	each := func(fn func([]byte) error) error {
		for off := 0; off < len(rest); off += streamChunk {
			k := min(streamChunk, len(rest)-off)
			binary.LittleEndian.PutUint64(counter[8:], 1+uint64(off/64))
			salsa.XORKeyStream(buf[:k], rest[off:off+k], &counter, &subKey)
			if err := fn(buf[:k]); err != nil {
				return err
			}
		}
		return nil
	}

	mac := poly1305.New(&polyKey)
	mac.Write(first[:n])
	_ = each(func(c []byte) error { mac.Write(c); return nil })
	tag := mac.Sum(nil)

	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if _, err := w.Write(tag); err != nil {
		return err
	}
	if _, err := w.Write(first[:n]); err != nil {
		return err
	}
	return each(func(c []byte) error { _, err := w.Write(c); return err })
}
