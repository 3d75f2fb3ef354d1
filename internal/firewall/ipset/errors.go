package ipset

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"syscall"
)

// Errno is an error number private to ipset (IPSET_ERR_*, 4096 and up), as
// the kernel returns it in a netlink error. Ordinary error numbers (ENOENT
// for a missing set, ...) are returned as syscall.Errno instead, so that
// errors.Is(err, fs.ErrNotExist) works on them.
type Errno int

// The ipset error numbers this package acts on or explains.
const (
	ErrnoProtocol     Errno = 4097 // the kernel did not understand a message
	ErrnoFindType     Errno = 4098 // no such set type or revision in the kernel
	ErrnoMaxSets      Errno = 4099 // the kernel's limit on the number of sets
	ErrnoBusy         Errno = 4100 // the set is referenced by a rule and cannot be destroyed
	ErrnoNoSetName2   Errno = 4101 // swap or rename: the second set does not exist
	ErrnoTypeMismatch Errno = 4102 // sets of different type or family cannot be swapped
	ErrnoExist        Errno = 4103 // add: already in the set; del: not in the set; create: name taken
	ErrnoInvalidCIDR  Errno = 4104 // prefix length not accepted (e.g. /0 in hash:net)
	ErrnoReferenced   Errno = 4108 // the set is referenced
	ErrnoHashFull     Errno = 4352 // the set holds maxelem elements
)

var errnoText = map[Errno]string{
	4097:              "kernel error: protocol error",
	ErrnoFindType:     "kernel does not support the set type or revision",
	ErrnoMaxSets:      "kernel limit on the number of sets reached",
	ErrnoBusy:         "set is in use by a kernel component (a firewall rule)",
	ErrnoNoSetName2:   "second set does not exist",
	ErrnoTypeMismatch: "the sets have different types or families",
	ErrnoExist:        "element or set already exists (or, for a delete, is missing)",
	ErrnoInvalidCIDR:  "prefix length not accepted by the set type",
	4105:              "invalid netmask",
	4106:              "invalid family",
	4107:              "timeout given for a set without timeouts",
	ErrnoReferenced:   "set is referenced and cannot be renamed or destroyed",
	4109:              "invalid IPv4 address",
	4110:              "invalid IPv6 address",
	ErrnoHashFull:     "set is full (maxelem reached)",
	4353:              "invalid element for the set type",
}

func (e Errno) Error() string {
	if s, ok := errnoText[e]; ok {
		return s
	}
	return "ipset error " + strconv.Itoa(int(e))
}

// Is makes errors.Is(err, ErrFull) true for a full set.
func (e Errno) Is(target error) bool {
	return target == ErrFull && e == ErrnoHashFull
}

// ErrFull reports that an Apply found a set at its maxelem limit. Sets are
// sized when Replace loads them (at least twice the list), so this happens
// only when deltas alone have grown a set that far; calling Replace with
// the full desired state builds larger sets.
var ErrFull = errors.New("ipset: set is full")

// kernelErrno turns the negative error of a netlink ack into an error value.
func kernelErrno(code int32) error {
	n := int(-code)
	if n >= 4096 {
		return Errno(n)
	}
	return syscall.Errno(n)
}

// ElementError is one element the kernel refused during Replace or Apply.
type ElementError struct {
	Op     string       // "add" or "del"
	Set    string       // the set's name
	Prefix netip.Prefix // the element; single addresses have full length
	Err    error        // an Errno or a syscall.Errno
}

func (e *ElementError) Error() string {
	why := e.Err.Error()
	if errors.Is(e.Err, ErrnoExist) {
		// The kernel uses one number for both cases; the operation tells
		// which one it was.
		why = "already in the set"
		if e.Op == "del" {
			why = "not in the set"
		}
	}
	prep := "to"
	if e.Op == "del" {
		prep = "from"
	}
	return fmt.Sprintf("ipset: %s %s %s set %s: %s", e.Op, e.Prefix, prep, e.Set, why)
}

func (e *ElementError) Unwrap() error { return e.Err }

// opError is a failed command on a whole set.
type opError struct {
	op, set string
	err     error
}

func (e *opError) Error() string {
	return fmt.Sprintf("ipset: %s %s: %v", e.op, e.set, e.err)
}

func (e *opError) Unwrap() error { return e.err }
