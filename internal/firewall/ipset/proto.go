package ipset

import "strconv"

// Constants of the kernel's ipset netlink protocol, from
// include/uapi/linux/netfilter/ipset/ip_set.h and nfnetlink.h. Only what this
// package sends or reads is listed.

const (
	// nfnlSubsysIPSet is NFNL_SUBSYS_IPSET: the high byte of the netlink
	// message type; the low byte is the ipset command.
	nfnlSubsysIPSet = 6
	// protocolVersion is IPSET_PROTOCOL. Kernels since 3.x speak 6; 7 adds
	// nothing this package relies on, and the kernel accepts any version
	// between IPSET_PROTOCOL_MIN (6) and its own.
	protocolVersion = 7

	// maxNameLen is IPSET_MAXNAMELEN minus the terminating NUL.
	maxNameLen = 31
)

// Commands (enum ipset_cmd).
const (
	cmdCreate  = 2
	cmdDestroy = 3
	cmdFlush   = 4
	cmdRename  = 5
	cmdSwap    = 6
	cmdList    = 7
	cmdAdd     = 9
	cmdDel     = 10
	cmdType    = 13
)

// Attributes at command level.
const (
	attrProtocol    = 1
	attrSetName     = 2
	attrTypeName    = 3
	attrSetName2    = 3 // the second name of SWAP reuses the type name slot
	attrRevision    = 4
	attrFamily      = 5
	attrFlags       = 6
	attrData        = 7
	attrADT         = 8
	attrLineNo      = 9
	attrRevisionMin = 10
)

// Attributes inside IPSET_ATTR_DATA (create and element attributes).
const (
	attrIP         = 1
	attrCIDR       = 3
	attrTimeout    = 6
	attrHashSize   = 18
	attrMaxElem    = 19
	attrElements   = 24
	attrReferences = 25
	attrMemSize    = 26
)

// Attributes inside IPSET_ATTR_IP.
const (
	attrIPAddrIPv4 = 1
	attrIPAddrIPv6 = 2
)

// Command-level flags (IPSET_ATTR_FLAGS).
const (
	// flagListHeader asks LIST for set headers only, never members.
	flagListHeader = 1 << 2
)

// Netlink attribute type flags.
const (
	nlaFNested       = 1 << 15
	nlaFNetByteOrder = 1 << 14
)

// Address families as ipset names them (NFPROTO_IPV4, NFPROTO_IPV6).
const (
	familyInet  = 2
	familyInet6 = 10
)

// Set type names.
const (
	typeHashIP  = "hash:ip"
	typeHashNet = "hash:net"
)

// Netlink limits. An attribute's length is a uint16, so the nested list of
// elements (IPSET_ATTR_ADT) of one message must stay below 64 KiB; that, not
// the socket, bounds the elements per message.
const (
	maxADTBytes = 65535 - 4
)

func familyName(f uint8) string {
	switch f {
	case familyInet:
		return "inet"
	case familyInet6:
		return "inet6"
	}
	return "family " + strconv.Itoa(int(f))
}
