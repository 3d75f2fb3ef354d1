// Package greylist publishes the daily snapshot of the DynFW list as files
// that anyone can download: the Turris-compatible greylist CSV, plus JSON and
// plain-text renderings of the same entries, an archive of one snapshot per
// UTC day, and the HTTP handler that serves them with cache validators.
//
// Data enters as []Entry, an address or prefix with its greylist tags,
// either directly through Store.Snapshot or from a source function that
// Store.Run calls once a day (and at start when the day's snapshot is
// missing). Entries are normalised once (canonical prefixes, sorted and
// de-duplicated tags, duplicates merged, a fixed order) so that the same
// list always gives the same bytes and therefore the same ETag.
//
// Data leaves as files under the store's directory, laid out like
// https://view.sentinel.turris.cz/greylist-data/ so that existing consumers
// (intelmq, n6, MikroTik scripts) only need a new base URL:
//
//	LICENSE.txt
//	greylist-latest.csv  greylist-latest.json  greylist-latest.txt
//	archive/YYYY/greylist-YYYY-MM-DD.csv (.json, .txt)
//
// Every file is replaced atomically (temporary file, fsync, rename, fsync of
// the directory), so a reader or a concurrent HTTP response never sees a
// partial file. Store.Handler serves the tree under /greylist-data/, its
// HTML indexes as bare pages or, after Store.SetLayout, inside a site's
// layout (the web view's, which cmd/sentinel hands in: this package does
// not depend on it), and Store.Catalog tells other pages what exists. A
// store opened with Options.ReadOnly serves a directory that another
// process writes, and writes nothing itself.
//
// # Formats
//
// CSV (WriteCSV) is byte-compatible with the Turris greylist: a comment line
// "# For the terms of use see <licence URL>", the header "Address,Tags", then
// one row per entry with LF line endings, as in every published sample. The
// tags are sorted and joined with ","; the field is bare with one tag, quoted
// with '"' with several, and empty (the row ends in ",") without tags, which
// is what Python's csv writer does and keeps two fields per row for parsers
// such as n6 that unpack exactly two.
//
// JSON (WriteJSON) is one document with one entry per line, so that it can be
// diffed and grepped like the CSV:
//
//	{"generated":"2024-03-10T00:00:00Z","license":"<licence URL>","count":2,"entries":[
//	{"address":"1.2.3.4","tags":["telnet"]},
//	{"address":"10.0.0.0/8","tags":[]}
//	]}
//
// Text (WriteText) is one address or prefix per line and nothing else, since
// ipset restore scripts, nft element lists and MikroTik import scripts choke
// on comments.
//
// In all three, single addresses are written without a prefix length and
// prefixes in CIDR notation. Rows are ordered: IPv4 addresses numerically,
// then IPv6 addresses, then IPv4 prefixes, then IPv6 prefixes (each by
// address, then length). Addresses first keeps files that hold only addresses
// identical to what Turris publishes, and parsers that accept only IPv4
// addresses (n6) meet everything they can use before anything they skip.
package greylist
