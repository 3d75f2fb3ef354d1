package zcert

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
)

// KeySize is the length in bytes of a CURVE public or secret key.
const KeySize = 32

// KeyTextSize is the length of a key written as Z85 text.
const KeyTextSize = KeySize / 4 * 5

// Key is a Curve25519 public or secret key as the CURVE mechanism uses it: 32
// raw bytes. It is a plain array so that converting to and from [32]byte, as
// the transport takes, is free.
type Key [KeySize]byte

// String returns the key as 40 characters of Z85, the form used in
// certificate files and by zmq_setsockopt. For a secret key that is the
// secret itself, so never format a secret Key into logs.
func (k Key) String() string {
	var b [KeyTextSize]byte
	encodeZ85(b[:], k[:])
	return string(b[:])
}

// IsZero reports whether every byte of k is zero. czmq uses the all-zero key
// to mean "no key", so a zero secret key in a certificate is not a secret.
func (k Key) IsZero() bool {
	return k == Key{}
}

// ParseKey decodes a key from its 40-character Z85 form. Anything else
// (another length, a character outside the alphabet, surrounding whitespace
// or quotes, a group that overflows 32 bits) is an error wrapping
// ErrInvalidZ85.
func ParseKey(z85 string) (Key, error) {
	var k Key
	if len(z85) != KeyTextSize {
		return k, fmt.Errorf("%w: a key is %d characters, got %d", ErrInvalidZ85, KeyTextSize, len(z85))
	}
	if err := decodeZ85(k[:], z85); err != nil {
		return Key{}, err
	}
	return k, nil
}

// GenerateKeyPair returns a new Curve25519 key pair drawn from crypto/rand,
// equivalent to zmq_curve_keypair. The secret is stored as drawn, unclamped,
// as libsodium and libzmq do; every Curve25519 implementation clamps it when
// it is used, so PublicFromSecret(secret) == public.
func GenerateKeyPair() (public, secret Key, err error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, Key{}, fmt.Errorf("zcert: generating Curve25519 key: %w", err)
	}
	copy(secret[:], priv.Bytes())
	copy(public[:], priv.PublicKey().Bytes())
	return public, secret, nil
}

// PublicFromSecret derives the public key that belongs to secret (the
// Curve25519 scalar multiple of the base point), as zmq_curve_public does.
// Every 32-byte value is a usable secret, so it cannot fail.
func PublicFromSecret(secret Key) Key {
	priv, err := ecdh.X25519().NewPrivateKey(secret[:])
	if err != nil {
		// NewPrivateKey rejects only a length other than 32, which the
		// array type rules out.
		panic("zcert: X25519 rejected a 32-byte secret: " + err.Error())
	}
	var public Key
	copy(public[:], priv.PublicKey().Bytes())
	return public
}
