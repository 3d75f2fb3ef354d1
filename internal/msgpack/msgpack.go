// Package msgpack is the MessagePack codec used on every Sentinel wire: probe
// payloads arriving at ingest and the DynFW messages that the publisher sends
// and dynfw-client receives.
//
// Data leaves a Go program through the Append* functions, which append to a
// byte slice the same bytes msgpack-python's packb (use_bin_type=True) emits
// for the corresponding Python value: the smallest integer encoding, str for
// text, bin for bytes. The reference publisher is Python, and clients such as
// petrkutalek/dynfwd reject bin where they expect str, so byte identity
// matters.
//
// Data enters through a Reader, which walks one buffer value by value without
// copying (strings come back as sub-slices of the input), through Decode, which
// builds generic Go values (maps keep their key order), or through AppendJSON,
// which transcodes straight to JSON for display. Decoding is liberal in what it
// accepts (every integer width, str or bin wherever a string is expected) and
// safe on hostile input: every declared length is checked against the bytes
// that remain before anything is allocated, generic decoding stops at MaxDepth
// nested containers, and failures are typed errors carrying the input offset.
package msgpack

import (
	"errors"
	"fmt"
)

// MaxDepth is the deepest nesting of arrays and maps that Decode, ReadValue,
// AppendJSON and Append accept. A top-level array or map is at depth 1. The
// limit bounds recursion on hostile input; real Sentinel payloads are at most
// three levels deep.
const MaxDepth = 64

// Type is the kind of a MessagePack value, as reported by Reader.PeekType.
// All integer encodings share TypeInt: the encoding width is an artefact of
// the sender, not part of the value.
type Type uint8

// The kinds of MessagePack values.
const (
	TypeInvalid Type = iota // not a value: end of input or the unused code 0xc1
	TypeNil
	TypeBool
	TypeInt // every signed and unsigned encoding, fixints included
	TypeFloat
	TypeStr
	TypeBin
	TypeArray
	TypeMap
	TypeExt
)

var typeNames = [...]string{
	TypeInvalid: "invalid",
	TypeNil:     "nil",
	TypeBool:    "bool",
	TypeInt:     "int",
	TypeFloat:   "float",
	TypeStr:     "str",
	TypeBin:     "bin",
	TypeArray:   "array",
	TypeMap:     "map",
	TypeExt:     "ext",
}

// String returns the MessagePack name of the kind ("int", "str", "map", ...).
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// typeOf classifies every leading byte once, so that PeekType and the type
// checks of the Read methods are a single table load.
var typeOf = func() (t [256]Type) {
	for c := 0; c < 256; c++ {
		switch {
		case c <= 0x7f, c >= 0xe0:
			t[c] = TypeInt
		case c <= 0x8f:
			t[c] = TypeMap
		case c <= 0x9f:
			t[c] = TypeArray
		case c <= 0xbf:
			t[c] = TypeStr
		}
	}
	t[0xc0] = TypeNil
	t[0xc1] = TypeInvalid
	t[0xc2], t[0xc3] = TypeBool, TypeBool
	t[0xc4], t[0xc5], t[0xc6] = TypeBin, TypeBin, TypeBin
	t[0xc7], t[0xc8], t[0xc9] = TypeExt, TypeExt, TypeExt
	t[0xca], t[0xcb] = TypeFloat, TypeFloat
	for c := 0xcc; c <= 0xd3; c++ {
		t[c] = TypeInt
	}
	for c := 0xd4; c <= 0xd8; c++ {
		t[c] = TypeExt
	}
	t[0xd9], t[0xda], t[0xdb] = TypeStr, TypeStr, TypeStr
	t[0xdc], t[0xdd] = TypeArray, TypeArray
	t[0xde], t[0xdf] = TypeMap, TypeMap
	return t
}()

// Sentinel errors. Decoding failures are returned as *DecodeError or
// *TypeError, which wrap these; test them with errors.Is.
var (
	// ErrShortBuffer means the input ends before the value does, including a
	// declared string length or element count larger than what remains.
	ErrShortBuffer = errors.New("unexpected end of input")
	// ErrInvalidCode means the input holds 0xc1, which MessagePack never uses.
	ErrInvalidCode = errors.New("invalid type code 0xc1")
	// ErrRange means an integer does not fit the Go type asked for, such as a
	// negative value read with ReadUint.
	ErrRange = errors.New("integer out of range")
	// ErrTooDeep means arrays and maps are nested deeper than MaxDepth.
	ErrTooDeep = errors.New("nesting deeper than MaxDepth")
	// ErrTrailing means bytes follow the single value Decode or AppendJSON
	// was given.
	ErrTrailing = errors.New("trailing bytes after value")
	// ErrType is wrapped by every *TypeError.
	ErrType = errors.New("unexpected type")
)

// DecodeError reports malformed or truncated input.
type DecodeError struct {
	Offset int   // position in the input of the value that could not be read
	Err    error // wraps one of the sentinel errors above
}

// Error returns "msgpack: at offset N: " followed by the reason.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("msgpack: at offset %d: %v", e.Offset, e.Err)
}

// Unwrap returns the underlying sentinel (possibly with detail).
func (e *DecodeError) Unwrap() error { return e.Err }

// TypeError reports a well-formed value of a kind the caller did not ask for.
// The Reader does not advance past the value, so the caller may read it in
// another way or Skip it.
type TypeError struct {
	Want   string // what the caller asked for, e.g. "int" or "str or bin"
	Got    Type
	Offset int // position of the value in the input
}

// Error returns "msgpack: at offset N: want X, got Y".
func (e *TypeError) Error() string {
	return fmt.Sprintf("msgpack: at offset %d: want %s, got %s", e.Offset, e.Want, e.Got)
}

// Is makes errors.Is(err, ErrType) true for every *TypeError.
func (e *TypeError) Is(target error) bool { return target == ErrType }

// Ext is an extension value: an application-defined type code and opaque
// data. Type -1 is the MessagePack timestamp; it is not interpreted.
type Ext struct {
	Type int8
	Data []byte
}

// Map is a decoded MessagePack map. It is a slice so that the order of the
// keys on the wire survives decoding (Sentinel payloads are shown to people
// "as received"); duplicate keys are kept as they come.
type Map []KV

// KV is one key and value of a Map.
type KV struct {
	Key   string
	Value any
}

// Get returns the value of the first entry with the given key.
func (m Map) Get(key string) (any, bool) {
	for _, kv := range m {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}
