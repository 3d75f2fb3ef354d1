package greylist

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logBuffer collects log lines from concurrent goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newStore(t testing.TB, dir string, opts Options) (*Store, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// ipv4Entries returns n distinct IPv4 entries with one to three tags.
func ipv4Entries(n int) []Entry {
	tags := [][]string{{"telnet"}, {"ftp", "http"}, {"http", "port_scan", "smtp"}}
	out := make([]Entry, n)
	for i := range out {
		a := netip.AddrFrom4([4]byte{byte(1 + i>>24), byte(i >> 16), byte(i >> 8), byte(i)})
		out[i] = Entry{Addr: netip.PrefixFrom(a, 32), Tags: tags[i%3]}
	}
	return out
}

func render(t testing.TB, f Format, now time.Time, license string, entries []Entry) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	switch f {
	case CSV:
		err = WriteCSV(&b, license, entries)
	case JSON:
		err = WriteJSON(&b, now, license, entries)
	case Text:
		err = WriteText(&b, entries)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exists(dir, name string) bool {
	_, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name)))
	return err == nil
}

// tempFiles lists files left behind by writeAtomic anywhere under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tmpPrefix) {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func TestSnapshotLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "greylist")
	s, logs := newStore(t, dir, Options{LicenseURL: exampleLicense})
	now := time.Date(2024, 3, 10, 0, 0, 7, 500e6, time.FixedZone("CET", 3600))
	day := now.UTC().Truncate(time.Second)
	entries := mixedEntries()
	if err := s.Snapshot(now, entries); err != nil {
		t.Fatal(err)
	}
	for _, f := range formats {
		want := render(t, f, day, exampleLicense, entries)
		for _, name := range []string{"archive/2024/greylist-2024-03-09." + string(f), "greylist-latest." + string(f)} {
			if got := readFile(t, dir, name); !bytes.Equal(got, want) {
				t.Errorf("%s:\n%s\nwant\n%s", name, got, want)
			}
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if !fi.ModTime().Equal(day) {
				t.Errorf("%s: mtime %v, want the snapshot time %v", name, fi.ModTime(), day)
			}
			if fi.Mode().Perm()&0o044 == 0 {
				t.Errorf("%s: mode %v, want readable by others (public data)", name, fi.Mode())
			}
		}
	}
	// 00:00:07 CET is still the 9th in UTC.
	if exists(dir, "archive/2024/greylist-2024-03-10.csv") {
		t.Error("snapshot filed under the local date instead of the UTC one")
	}
	// The default claims no licence (TestLicenseFollowsOperator).
	if !bytes.Contains(readFile(t, dir, "LICENSE.txt"), []byte("Terms of use of the greylist data")) {
		t.Error("no default LICENSE.txt")
	}
	if tmp := tempFiles(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if latest, ok := s.Latest(); !ok || !latest.Equal(day) {
		t.Errorf("Latest() = %v, %v; want %v", latest, ok, day)
	}
	if !strings.Contains(logs.String(), "entries=9") || !strings.Contains(logs.String(), "invalid_addresses=1 invalid_tags=2") {
		t.Errorf("log lines:\n%s", logs)
	}
}

func TestSnapshotReplacesDay(t *testing.T) {
	dir := t.TempDir()
	s, logs := newStore(t, dir, Options{})
	first, second := ipv4Entries(10), ipv4Entries(3)
	if err := s.Snapshot(march10.Add(time.Hour), first); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "replaced") {
		t.Fatal("first snapshot of the day logged as a replacement")
	}
	if err := s.Snapshot(march10.Add(2*time.Hour), second); err != nil {
		t.Fatal(err)
	}
	want := render(t, CSV, march10, DefaultLicenseURL, second)
	for _, name := range []string{"archive/2024/greylist-2024-03-10.csv", "greylist-latest.csv"} {
		if got := readFile(t, dir, name); !bytes.Equal(got, want) {
			t.Errorf("%s not replaced:\n%s", name, got)
		}
	}
	if !strings.Contains(logs.String(), `msg="greylist snapshot replaced the day's earlier one" day=2024-03-10`) {
		t.Errorf("replacement not logged:\n%s", logs)
	}
}

func TestLatestFollowsLastCall(t *testing.T) {
	dir := t.TempDir()
	s, _ := newStore(t, dir, Options{})
	s.Snapshot(march10, ipv4Entries(5))
	// The clock was wrong and has been corrected backwards.
	if err := s.Snapshot(march10.AddDate(0, 0, -1), ipv4Entries(2)); err != nil {
		t.Fatal(err)
	}
	if latest, _ := s.Latest(); !latest.Equal(march10.AddDate(0, 0, -1)) {
		t.Errorf("latest %v", latest)
	}
	if got, want := readFile(t, dir, "greylist-latest.txt"), render(t, Text, time.Time{}, "", ipv4Entries(2)); !bytes.Equal(got, want) {
		t.Errorf("greylist-latest.txt\n%s", got)
	}
	if !exists(dir, "archive/2024/greylist-2024-03-10.csv") {
		t.Error("the later day's archive was removed")
	}
}

func TestSnapshotWithoutTime(t *testing.T) {
	s, _ := newStore(t, t.TempDir(), Options{})
	if err := s.Snapshot(time.Time{}, nil); err == nil {
		t.Error("Snapshot accepted a zero time")
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	s, logs := newStore(t, dir, Options{RetentionDays: 2})
	// An operator's own file in a year directory is never deleted, and keeps
	// the directory.
	os.MkdirAll(filepath.Join(dir, "archive/2023"), 0o755)
	os.WriteFile(filepath.Join(dir, "archive/2023/README"), []byte("mine"), 0o644)
	days := []time.Time{
		time.Date(2022, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(2023, 12, 30, 0, 0, 0, 0, time.UTC),
		time.Date(2023, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC),
	}
	for _, d := range days {
		if err := s.Snapshot(d, ipv4Entries(5)); err != nil {
			t.Fatal(err)
		}
	}
	// 2024-01-02 with 2 days: 2023-12-31, 2024-01-01 and 2024-01-02 stay.
	cat, err := s.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, y := range cat.Years {
		for _, d := range y.Days {
			kept = append(kept, d.Date)
		}
	}
	if want := []string{"2023-12-31", "2024-01-01", "2024-01-02"}; !slices.Equal(kept, want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
	for _, f := range formats {
		if exists(dir, "archive/2023/greylist-2023-12-30."+string(f)) {
			t.Errorf("2023-12-30 %s not deleted", f)
		}
	}
	if exists(dir, "archive/2022") {
		t.Error("emptied year directory 2022 not removed")
	}
	if !exists(dir, "archive/2023/README") {
		t.Error("retention deleted a file that is not a snapshot")
	}
	if !strings.Contains(logs.String(), "days_removed=1 oldest_kept=2023-12-31") {
		t.Errorf("pruning not logged:\n%s", logs)
	}
}

func TestRetentionZeroKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s, _ := newStore(t, dir, Options{})
	for i := range 40 {
		if err := s.Snapshot(march10.AddDate(0, 0, -i*30), ipv4Entries(1)); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := s.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, y := range cat.Years {
		n += len(y.Days)
	}
	if n != 40 {
		t.Errorf("%d days kept, want 40", n)
	}
	if _, err := Open(dir, Options{RetentionDays: -1}); err == nil {
		t.Error("negative retention accepted")
	}
}

func TestLicense(t *testing.T) {
	dir := t.TempDir()
	s, _ := newStore(t, dir, Options{Attribution: "Example CERT", License: "CC BY-NC-SA 4.0", LicenseURL: "https://creativecommons.org/licenses/by-nc-sa/4.0/"})
	lic := string(readFile(t, dir, "LICENSE.txt"))
	for _, want := range []string{"Example CERT", "https://creativecommons.org/licenses/by-nc-sa/4.0/", "CC BY-NC-SA 4.0"} {
		if !strings.Contains(lic, want) {
			t.Errorf("LICENSE.txt lacks %q:\n%s", want, lic)
		}
	}
	s.Close()
	// An existing licence, perhaps edited by the operator, is kept.
	os.WriteFile(filepath.Join(dir, "LICENSE.txt"), []byte("edited\n"), 0o644)
	newStore(t, dir, Options{LicenseText: "other\n"})
	if got := string(readFile(t, dir, "LICENSE.txt")); got != "edited\n" {
		t.Errorf("LICENSE.txt rewritten: %q", got)
	}
	dir2 := t.TempDir()
	newStore(t, dir2, Options{LicenseText: "custom terms\n"})
	if got := string(readFile(t, dir2, "LICENSE.txt")); got != "custom terms\n" {
		t.Errorf("custom LICENSE.txt: %q", got)
	}
}

func TestOpenRemovesTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "archive/2024"), 0o755)
	for _, name := range []string{tmpPrefix + "greylist-latest.csv-00ff", "archive/2024/" + tmpPrefix + "greylist-2024-03-10.json-1234"} {
		os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	newStore(t, dir, Options{})
	if tmp := tempFiles(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if !exists(dir, "notes.txt") {
		t.Error("removed a file that is not ours")
	}
}

func TestCatalog(t *testing.T) {
	dir := t.TempDir()
	s, _ := newStore(t, dir, Options{})
	cat, err := s.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if cat.Latest != nil || len(cat.Years) != 0 || cat.License != "/greylist-data/LICENSE.txt" {
		t.Errorf("empty store catalog %+v", cat)
	}
	for _, d := range []time.Time{march10.AddDate(-1, 0, 0), march10.AddDate(0, 0, -1), march10} {
		if err := s.Snapshot(d.Add(time.Minute), ipv4Entries(2)); err != nil {
			t.Fatal(err)
		}
	}
	// A Turris CSV copied in by hand, and names that are not snapshots.
	os.WriteFile(filepath.Join(dir, "archive/2024/greylist-2024-01-05.csv"), []byte("x"), 0o644)
	for _, junk := range []string{"archive/2024/greylist-2024-02-30.csv", "archive/2024/greylist-2023-01-05.csv",
		"archive/2024/greylist-2024-01-06.xml", "archive/2024/greylist-2024-1-07.csv", "archive/24/greylist-0024-01-01.csv"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, junk)), 0o755)
		os.WriteFile(filepath.Join(dir, junk), []byte("x"), 0o644)
	}
	// A year that links out of the store is not listed.
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "greylist-2019-01-01.csv"), []byte("secret"), 0o644)
	os.Symlink(outside, filepath.Join(dir, "archive/2019"))

	cat, err = s.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	all := map[Format]string{CSV: "", JSON: "", Text: ""}
	want := Catalog{
		Latest:  &Latest{Time: march10.Add(time.Minute), Files: paths(all, "/greylist-data/greylist-latest")},
		License: "/greylist-data/LICENSE.txt",
		Years: []Year{
			{2023, []Day{{"2023-03-10", paths(all, "/greylist-data/archive/2023/greylist-2023-03-10")}}},
			{2024, []Day{
				{"2024-01-05", paths(map[Format]string{CSV: ""}, "/greylist-data/archive/2024/greylist-2024-01-05")},
				{"2024-03-09", paths(all, "/greylist-data/archive/2024/greylist-2024-03-09")},
				{"2024-03-10", paths(all, "/greylist-data/archive/2024/greylist-2024-03-10")},
			}},
		},
	}
	if got, w := fmt.Sprintf("%+v", catalogString(cat)), fmt.Sprintf("%+v", catalogString(want)); got != w {
		t.Errorf("catalog\n%s\nwant\n%s", got, w)
	}
}

func paths(fs map[Format]string, base string) map[Format]string {
	out := map[Format]string{}
	for f := range fs {
		out[f] = base + "." + string(f)
	}
	return out
}

// catalogString prints a catalog with its maps in a fixed order.
func catalogString(c Catalog) string {
	var b strings.Builder
	if c.Latest != nil {
		fmt.Fprintf(&b, "latest %s %s\n", c.Latest.Time.Format(time.RFC3339), filesString(c.Latest.Files))
	}
	fmt.Fprintf(&b, "license %s\n", c.License)
	for _, y := range c.Years {
		for _, d := range y.Days {
			fmt.Fprintf(&b, "%d %s %s\n", y.Year, d.Date, filesString(d.Files))
		}
	}
	return b.String()
}

func filesString(m map[Format]string) string {
	var s []string
	for _, f := range formats {
		if p, ok := m[f]; ok {
			s = append(s, p)
		}
	}
	return strings.Join(s, " ")
}

// TestAtomicReplacement reads the latest CSV, from the disk and through the
// handler, while snapshots of different sizes replace it: every read must
// be one complete version, and every ETag the hash of the body it came with.
func TestAtomicReplacement(t *testing.T) {
	dir := t.TempDir()
	s, _ := newStore(t, dir, Options{})
	const rounds = 20
	versions := make([][]Entry, rounds)
	valid := map[[32]byte]bool{}
	for i := range versions {
		versions[i] = ipv4Entries(200 + 1000*(i%5) + i)
		valid[sha256.Sum256(render(t, CSV, time.Time{}, DefaultLicenseURL, versions[i]))] = true
	}
	if err := s.Snapshot(march10, versions[0]); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, 10)
	fail := func(format string, args ...any) {
		select {
		case errs <- fmt.Sprintf(format, args...):
		default:
		}
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			b, err := os.ReadFile(filepath.Join(dir, "greylist-latest.csv"))
			if err != nil {
				fail("read: %v", err)
				return
			}
			if !valid[sha256.Sum256(b)] {
				fail("partial or unknown file read from disk (%d bytes)", len(b))
				return
			}
			reads.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		for !stop.Load() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/greylist-data/greylist-latest.csv", nil))
			b := rec.Body.Bytes()
			if rec.Code != http.StatusOK || !valid[sha256.Sum256(b)] {
				fail("HTTP %d: partial or unknown body (%d bytes)", rec.Code, len(b))
				return
			}
			if tag := rec.Header().Get("ETag"); tag != etagOf(b) {
				fail("ETag %s does not match the body it came with", tag)
				return
			}
			reads.Add(1)
		}
	}()
	for i := 1; i < rounds*2; i++ {
		if err := s.Snapshot(march10.Add(time.Duration(i)*time.Minute), versions[i%rounds]); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if reads.Load() == 0 {
		t.Error("no reads happened")
	}
	t.Logf("%d complete reads during %d snapshots", reads.Load(), rounds*2)
	if tmp := tempFiles(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}
