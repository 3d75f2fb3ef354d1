package zmqpull

import (
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

func keyPair(t *testing.T) (pub, sec [32]byte) {
	p, s, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return *p, *s
}
