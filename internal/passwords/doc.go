// Package passwords is the password checker of Sentinel: a corpus of SHA-1
// password hashes (the passwords that attackers tried against the honeypots,
// optionally joined with an imported Have I Been Pwned download), the index
// file that serves it, and the two HTTP APIs that query it.
//
// # Why a prefix index
//
// Clients never send a password or a full hash. They send a prefix of the
// SHA-1 and receive every hash of the corpus that starts with it, then compare
// locally (k-anonymity). The server therefore answers "all hashes with this
// prefix", never "is this hash present", and the index is organised around
// that question: one offset table entry per 20-bit prefix (5 hex digits, the
// 2^20 = 1,048,576 buckets of HIBP's range API) in front of the sorted
// records, so a range lookup is two table reads and one contiguous slice of
// a memory-mapped file.
//
// The reference checker (Sentinel View, /passcheck/apiv1/) takes a 6-hex
// prefix (2^24 buckets). Over a honeypot corpus of a few million hashes most
// 6-hex buckets hold zero or one hash, so the prefix, and whether the answer
// is NO_QUERY, nearly identify the password (k ≈ 1). The HIBP-compatible
// /range/{5hex} endpoint with Add-Padding keeps k large and hides the bucket
// size; the legacy endpoint stays for existing clients.
//
// # File format (version 1, little-endian)
//
//	offset 0    header, 64 bytes:
//	              0  magic "SNTLPWIX"
//	              8  version uint32 (1)
//	             12  prefix bits uint32 (20)
//	             16  record size uint32 (27)
//	             20  reserved uint32 (0)
//	             24  number of records uint64
//	             32  watermark int64, Unix nanoseconds: the live layer was
//	                 cut at this time, so stored events from then on are not
//	                 in the file and must be replayed into a Corpus
//	             40  CRC-32C of the offset table
//	             44  CRC-32C of the records
//	             48  reserved, zero
//	             60  CRC-32C of bytes 0..59
//	offset 64   offset table: 2^20+1 uint64; entry p is the number of
//	            records before bucket p, entry 2^20 the total
//	offset 64+8*(2^20+1)
//	            records, sorted by hash, unique, 27 bytes each:
//	              0  bytes 2..19 of the SHA-1 (the first 2.5 bytes are the
//	                 bucket; the low nibble of byte 2 is kept for alignment)
//	             18  honeypot count uint32 (saturating)
//	             22  imported (HIBP) count uint32 (saturating)
//	             26  sources, a Source bitmask
//
// The file is immutable: it is written once to a temporary file, synced and
// renamed into place. Open checks the header, the size and the offset table
// (about 8 MiB, a few milliseconds), so a truncated or overwritten file is
// refused with a clear error; Verify also checks the records.
//
// # Two counts
//
// A record keeps the honeypot count (how often attackers tried the password,
// with the sources that saw it) apart from the count imported from HIBP. The
// legacy API reports honeypot observations only ("this password was used
// against Turris routers"), so HIBP-only hashes are not listed there; the
// range API reports the sum, the prevalence of the password anywhere.
//
// # Live layer
//
// A Corpus is the file plus an in-memory layer of the passwords added since
// the file was built, merged at query time, and rebuilt into a new file by
// Compact in the background.
package passwords
