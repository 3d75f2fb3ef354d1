package greylist

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLicenseURL is what the files' first line points to when
// Options.LicenseURL is empty: LICENSE.txt beside them, which says whom the
// data comes from and, when the operator configured one, its licence. No
// licence is claimed by default: only the operator can grant one. Set
// LicenseURL (and License) to the licence the operator publishes under,
// for example https://creativecommons.org/licenses/by-nc-sa/4.0/ as the
// Turris files do.
const DefaultLicenseURL = "LICENSE.txt"

// DefaultAttribution is whom the default LICENSE.txt credits when
// Options.Attribution is empty.
const DefaultAttribution = "the operator of this server"

// URLPrefix is the path under which Handler serves the tree, the same as on
// view.sentinel.turris.cz, and the prefix of every path in a Catalog.
const URLPrefix = "/greylist-data/"

const (
	dateLayout  = "2006-01-02"
	licenseName = "LICENSE.txt"
	archiveDir  = "archive"
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// LicenseURL is written in the CSV comment line and the JSON "license"
	// field. Default DefaultLicenseURL.
	LicenseURL string
	// License names the licence the data is published under (for example
	// "CC BY-NC-SA 4.0"), in the default LICENSE.txt and the index page;
	// empty claims none. The same setting as the web view's data licence.
	License string
	// Attribution is the name that the default LICENSE.txt asks users to
	// credit (an organisation, a project). Default DefaultAttribution.
	Attribution string
	// CurrentListURL, when set, is linked from the index page as the list
	// as it is now (the server's /api/v1/list), between two snapshots.
	CurrentListURL string
	// LicenseText replaces the default LICENSE.txt text entirely.
	LicenseText string
	// RetentionDays, when positive, makes every snapshot delete the
	// archived days more than RetentionDays before its own day: 30 keeps
	// that day and the 30 before it. 0 keeps the archive forever.
	RetentionDays int
	// Clock tells the time to Run and to the handler (whose archive files
	// become immutable once their day is over). Default: the system clock.
	Clock Clock
	// Logger receives one line per snapshot, replacement and pruning.
	// Default slog.Default().
	Logger *slog.Logger
	// ReadOnly opens a directory that another process writes (a copy of a
	// server's <data>/greylist on a shared or synchronised file system) to
	// serve it: Open then creates, removes and writes nothing (the
	// directory must exist; LICENSE.txt is served only if it is there),
	// and Snapshot and Run return ErrReadOnly.
	ReadOnly bool
}

// ErrReadOnly is returned by Snapshot and Run on a store opened with
// Options.ReadOnly.
var ErrReadOnly = errors.New("greylist: store is read-only")

// Store is a directory of greylist snapshots. Its methods are safe for
// concurrent use; snapshots are serialised, and readers (the handler, the
// catalog, other processes) never see a partial file.
type Store struct {
	root  *os.Root
	opts  Options
	log   *slog.Logger
	clock Clock
	mu    sync.Mutex // serialises Snapshot
	etags etagCache
	// layout renders the HTML indexes inside a site's pages; nil serves
	// them as bare pages.
	layout atomic.Pointer[Layout]
	// next is when Run takes the next snapshot; nil when Run is not
	// running.
	next atomic.Pointer[time.Time]
}

// Open opens (creating it when needed) the store in dir, removes temporary
// files a crash may have left, and writes LICENSE.txt if it is missing. An
// existing LICENSE.txt is never changed, so that operators may edit it.
// With Options.ReadOnly it does none of that: dir must exist, and is only
// read. All later access goes through an os.Root on dir, so that no name,
// symbolic link or request can reach outside it.
func Open(dir string, opts Options) (*Store, error) {
	licenseURL := opts.LicenseURL
	if opts.LicenseURL == "" {
		opts.LicenseURL = DefaultLicenseURL
	}
	if opts.Attribution == "" {
		opts.Attribution = DefaultAttribution
	}
	if opts.LicenseText == "" {
		opts.LicenseText = defaultLicenseText(opts.Attribution, opts.License, licenseURL)
	}
	if opts.RetentionDays < 0 {
		return nil, fmt.Errorf("greylist: negative retention %d days", opts.RetentionDays)
	}
	s := &Store{opts: opts, clock: opts.Clock, log: opts.Logger}
	if s.clock == nil {
		s.clock = systemClock{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("greylist: %w", err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("greylist: %w", err)
	}
	s.root = root
	if err := s.init(); err != nil {
		root.Close()
		return nil, fmt.Errorf("greylist: %s: %w", dir, err)
	}
	return s, nil
}

func (s *Store) init() error {
	if s.opts.ReadOnly {
		s.primeETags()
		return nil
	}
	if err := s.root.MkdirAll(archiveDir, 0o755); err != nil {
		return err
	}
	if err := removeTemps(s.root, "."); err != nil {
		return err
	}
	years, err := s.yearDirs()
	if err != nil {
		return err
	}
	for _, y := range years {
		if err := removeTemps(s.root, yearDir(y)); err != nil {
			return err
		}
	}
	s.primeETags()
	switch _, err := s.root.Stat(licenseName); {
	case errors.Is(err, fs.ErrNotExist):
		return writeAtomic(s.root, licenseName, []byte(s.opts.LicenseText), time.Time{})
	default:
		return err
	}
}

// primeETags hashes the latest files, which every poller asks for first
// after a restart, sparing the first requests that work.
func (s *Store) primeETags() {
	for _, f := range formats {
		s.primeETag(latestName(f))
	}
}

func (s *Store) primeETag(name string) {
	f, err := s.root.Open(name)
	if err != nil {
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		s.etag(name, f, fi)
	}
}

// etag returns the ETag of the open file f, named name, hashing it only if
// this version (fi) has not been seen; f is left at its start. The tag comes
// from the open file rather than the name, so it describes the bytes that
// are read from f even if a snapshot renames a new version into place
// meanwhile.
func (s *Store) etag(name string, f *os.File, fi fs.FileInfo) (string, error) {
	if tag, ok := s.etags.get(name, fi); ok {
		return tag, nil
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tag := `"` + hex.EncodeToString(sum.Sum(nil)[:16]) + `"`
	s.etags.put(name, fi, tag)
	return tag, nil
}

// defaultLicenseText is LICENSE.txt when the operator wrote none: whom
// the data comes from and the licence they configured, or that none was
// stated.
func defaultLicenseText(attribution, license, licenseURL string) string {
	t := "Terms of use of the greylist data\n" +
		"=================================\n\n" +
		"The greylist data in this directory (greylist-latest.* and archive/*) is\n" +
		"published by " + attribution + ".\n\n"
	switch {
	case license != "":
		t += "It is licensed under " + license
		if licenseURL != "" {
			t += ":\n\n    " + licenseURL + "\n\n"
		} else {
			t += ".\n\n"
		}
		t += "When you share or adapt it, credit " + attribution + " and follow the\n" +
			"terms of that licence.\n"
	case licenseURL != "":
		t += "Its terms of use are at:\n\n    " + licenseURL + "\n"
	default:
		t += "No licence has been stated for it. Ask " + attribution + "\n" +
			"before you redistribute it.\n"
	}
	return t
}

// Close releases the store's directory. The handler must not be used
// afterwards.
func (s *Store) Close() error { return s.root.Close() }

// Snapshot writes entries as the snapshot of now's UTC day: the archive
// files of that day, then greylist-latest.*, each replaced atomically, with
// now (to the second) as their modification time, which the handler sends
// as Last-Modified. A day that already has a snapshot gets the new one (and
// a log line says so). Archived days beyond the retention are deleted
// afterwards; a failure there is logged, not returned, since the snapshot
// itself succeeded.
//
// greylist-latest.* always hold the entries of the latest call, even when
// now is earlier than the previous snapshot's time: a clock that was wrong
// and is corrected backwards must not freeze them.
//
// Each file is atomic on its own: for a moment greylist-latest.csv may be
// newer than greylist-latest.json. Compare the JSON "generated" field with
// Last-Modified if that matters.
func (s *Store) Snapshot(now time.Time, entries []Entry) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	if now.IsZero() {
		return errors.New("greylist: snapshot without a time")
	}
	start := time.Now()
	now = now.UTC().Truncate(time.Second)
	list, d := normalize(entries)
	if d.addrs > 0 || d.tags > 0 {
		s.log.Warn("greylist entries left out of the snapshot", "invalid_addresses", d.addrs, "invalid_tags", d.tags)
	}
	// Each format is rendered once and written twice (archive and latest);
	// the hash taken here is the ETag of both, so the handler never has to
	// read a fresh snapshot back to hash it.
	var data [len(formats)][]byte
	var tags [len(formats)]string
	for i, f := range formats {
		var b bytes.Buffer
		var err error
		switch f {
		case CSV:
			b.Grow(len(list) * 24)
			err = WriteCSV(&b, s.opts.LicenseURL, list)
		case JSON:
			b.Grow(len(list) * 42)
			err = WriteJSON(&b, now, s.opts.LicenseURL, list)
		case Text:
			b.Grow(len(list) * 16)
			err = WriteText(&b, list)
		}
		if err != nil {
			return fmt.Errorf("greylist: %s: %w", f, err)
		}
		data[i], tags[i] = b.Bytes(), etagOf(b.Bytes())
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.root.MkdirAll(yearDir(now.Year()), 0o755); err != nil {
		return fmt.Errorf("greylist: %w", err)
	}
	_, err := s.root.Stat(archiveName(now, CSV))
	replacing := err == nil
	for _, latest := range []bool{false, true} {
		for i, f := range formats {
			name := archiveName(now, f)
			if latest {
				name = latestName(f)
			}
			if err := writeAtomic(s.root, name, data[i], now); err != nil {
				return fmt.Errorf("greylist: %s: %w", name, err)
			}
			if fi, err := s.root.Stat(name); err == nil {
				s.etags.put(name, fi, tags[i])
			}
		}
	}
	day := now.Format(dateLayout)
	if replacing {
		s.log.Info("greylist snapshot replaced the day's earlier one", "day", day)
	}
	s.log.Info("greylist snapshot", "day", day, "entries", len(list),
		"csv_bytes", len(data[0]), "took", time.Since(start).Round(time.Millisecond))
	if err := s.prune(now); err != nil {
		s.log.Error("greylist archive pruning failed", "err", err)
	}
	return nil
}

// prune deletes the archived days that retention no longer keeps. Only
// files named like snapshots are touched, and a year directory only when it
// is left empty.
func (s *Store) prune(now time.Time) error {
	if s.opts.RetentionDays <= 0 {
		return nil
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	cutoff := today.AddDate(0, 0, -s.opts.RetentionDays)
	years, err := s.scanArchive()
	if err != nil {
		return err
	}
	removed, oldest := 0, ""
	for _, y := range years {
		left := len(y.Days)
		for _, d := range y.Days {
			t, _ := time.Parse(dateLayout, d.Date)
			if !t.Before(cutoff) {
				if oldest == "" {
					oldest = d.Date
				}
				continue
			}
			for _, p := range d.Files {
				name := strings.TrimPrefix(p, URLPrefix)
				if err := s.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				s.etags.forget(name)
			}
			removed++
			left--
		}
		if left == 0 {
			// Fails harmlessly when the operator keeps other files there.
			s.root.Remove(yearDir(y.Year))
		}
	}
	if removed > 0 {
		s.log.Info("greylist archive pruned", "days_removed", removed, "oldest_kept", oldest,
			"retention_days", s.opts.RetentionDays)
	}
	return nil
}

// Catalog is what a store holds, for index pages and for other parts of
// the web view. Paths are URL paths under URLPrefix.
type Catalog struct {
	// Latest is nil before the first snapshot.
	Latest *Latest `json:"latest"`
	// License is the path of LICENSE.txt, empty if it was removed.
	License string `json:"license,omitempty"`
	// Years are in ascending order, each with its days in ascending order.
	Years []Year `json:"years"`
	// Next is when the next snapshot is due, in UTC, while Run schedules
	// them in this process; nil otherwise (a read-only copy).
	Next *time.Time `json:"next,omitempty"`
}

// Latest describes greylist-latest.*.
type Latest struct {
	// Time is when the snapshot was taken, in UTC.
	Time time.Time `json:"time"`
	// Count is the number of entries (from greylist-latest.json); nil
	// when that file is missing or unreadable.
	Count *int `json:"count,omitempty"`
	// Files are the paths of the formats present.
	Files map[Format]string `json:"files"`
}

// Year is one archive year.
type Year struct {
	// Year is the calendar year, as in the directory name.
	Year int `json:"year"`
	// Days are the archived days of the year, in ascending order.
	Days []Day `json:"days"`
}

// Day is one archived snapshot.
type Day struct {
	// Date is the UTC day, YYYY-MM-DD.
	Date string `json:"date"`
	// Files are the paths of the formats present (normally all three; a
	// day copied in from elsewhere may have only the CSV).
	Files map[Format]string `json:"files"`
}

// Latest returns the time of the latest snapshot (the modification time of
// greylist-latest.csv), and false when there is none.
func (s *Store) Latest() (time.Time, bool) {
	fi, err := s.root.Stat(latestName(CSV))
	if err != nil || !fi.Mode().IsRegular() {
		return time.Time{}, false
	}
	return fi.ModTime().UTC(), true
}

// Catalog lists the latest snapshot and the archived days. It reads the
// directory each time (a few hundred names a year), so files that an
// operator copies in or deletes appear at once.
func (s *Store) Catalog() (Catalog, error) {
	var c Catalog
	for _, f := range formats {
		fi, err := s.root.Stat(latestName(f))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if c.Latest == nil {
			c.Latest = &Latest{Time: fi.ModTime().UTC(), Files: map[Format]string{}}
		}
		c.Latest.Files[f] = URLPrefix + latestName(f)
	}
	if c.Latest != nil {
		if n, ok := s.latestCount(); ok {
			c.Latest.Count = &n
		}
	}
	if next := s.next.Load(); next != nil {
		t := *next
		c.Next = &t
	}
	if fi, err := s.root.Stat(licenseName); err == nil && fi.Mode().IsRegular() {
		c.License = URLPrefix + licenseName
	}
	years, err := s.scanArchive()
	if err != nil {
		return Catalog{}, fmt.Errorf("greylist: %w", err)
	}
	c.Years = years
	if c.Years == nil {
		c.Years = []Year{}
	}
	return c, nil
}

// latestCount reads the entry count from the head of greylist-latest.json
// (WriteJSON puts "count" on its first line), so a read-only copy knows
// it too, without reading the list.
func (s *Store) latestCount() (int, bool) {
	f, err := s.root.Open(latestName(JSON))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	_, rest, ok := bytes.Cut(head, []byte(`"count":`))
	if !ok {
		return 0, false
	}
	end := bytes.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end <= 0 {
		return 0, false
	}
	c, err := strconv.Atoi(string(rest[:end]))
	return c, err == nil
}

// scanArchive lists archive/YYYY/greylist-YYYY-MM-DD.* files. Only real
// directories and regular files count, so a symbolic link planted in the
// archive is neither listed nor pruned through.
func (s *Store) scanArchive() ([]Year, error) {
	dirs, err := s.yearDirs()
	if err != nil {
		return nil, err
	}
	var years []Year
	for _, y := range dirs {
		files, err := s.readDir(yearDir(y))
		if err != nil {
			continue
		}
		byDate := map[string]map[Format]string{}
		for _, fe := range files {
			date, f, ok := parseArchiveFile(y, fe.Name())
			if !ok || !fe.Type().IsRegular() {
				continue
			}
			if byDate[date] == nil {
				byDate[date] = map[Format]string{}
			}
			byDate[date][f] = URLPrefix + yearDir(y) + "/" + fe.Name()
		}
		if len(byDate) == 0 {
			continue
		}
		yr := Year{Year: y}
		for date, paths := range byDate {
			yr.Days = append(yr.Days, Day{Date: date, Files: paths})
		}
		slices.SortFunc(yr.Days, func(a, b Day) int { return strings.Compare(a.Date, b.Date) })
		years = append(years, yr)
	}
	slices.SortFunc(years, func(a, b Year) int { return a.Year - b.Year })
	return years, nil
}

// yearDirs lists the archive's year directories (real ones, not links).
func (s *Store) yearDirs() ([]int, error) {
	ents, err := s.readDir(archiveDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var years []int
	for _, e := range ents {
		if y, ok := parseYear(e.Name()); ok && e.IsDir() {
			years = append(years, y)
		}
	}
	return years, nil
}

func (s *Store) readDir(name string) ([]fs.DirEntry, error) {
	d, err := s.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}

func latestName(f Format) string { return "greylist-latest." + string(f) }

func yearDir(y int) string { return fmt.Sprintf("%s/%04d", archiveDir, y) }

func archiveName(day time.Time, f Format) string {
	day = day.UTC()
	return yearDir(day.Year()) + "/greylist-" + day.Format(dateLayout) + "." + string(f)
}

// parseYear accepts exactly four digits, the only year directories that
// are written and served.
func parseYear(s string) (int, bool) {
	if len(s) != 4 {
		return 0, false
	}
	for i := 0; i < 4; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	y, err := strconv.Atoi(s)
	return y, err == nil
}

// parseArchiveFile accepts "greylist-YYYY-MM-DD.ext" for a real date in
// year y and a known format.
func parseArchiveFile(y int, name string) (date string, f Format, ok bool) {
	rest, ok := strings.CutPrefix(name, "greylist-")
	if !ok || len(rest) < len(dateLayout)+2 || rest[len(dateLayout)] != '.' {
		return "", "", false
	}
	date, f = rest[:len(dateLayout)], Format(rest[len(dateLayout)+1:])
	t, err := time.Parse(dateLayout, date)
	// The round trip refuses any spelling that Snapshot would not write.
	if err != nil || t.Format(dateLayout) != date || t.Year() != y || !f.valid() {
		return "", "", false
	}
	return date, f, true
}

// etagCache remembers the ETag of each file version, identified by its
// inode, size and modification time, so that a file is hashed at most once
// however often it is requested. Snapshot fills it as it writes.
type etagCache struct {
	mu sync.Mutex
	m  map[string]etagEntry
}

type etagEntry struct {
	fi  fs.FileInfo
	tag string
}

func (c *etagCache) get(name string, fi fs.FileInfo) (string, bool) {
	c.mu.Lock()
	e, ok := c.m[name]
	c.mu.Unlock()
	if !ok || !os.SameFile(e.fi, fi) || e.fi.Size() != fi.Size() || !e.fi.ModTime().Equal(fi.ModTime()) {
		return "", false
	}
	return e.tag, true
}

func (c *etagCache) put(name string, fi fs.FileInfo, tag string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]etagEntry{}
	}
	c.m[name] = etagEntry{fi, tag}
	c.mu.Unlock()
}

func (c *etagCache) forget(name string) {
	c.mu.Lock()
	delete(c.m, name)
	c.mu.Unlock()
}

// etagOf is a strong ETag: the first 128 bits of the content's SHA-256,
// enough to tell versions apart, short enough for every request header.
func etagOf(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}
