package metrics

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
)

// RegisterRuntime registers a few gauges about the process itself, each
// read when scraped:
//
//   - go_goroutines: the number of goroutines;
//   - go_memstats_heap_inuse_bytes: bytes in in-use heap spans, as
//     runtime.MemStats.HeapInuse, but read through runtime/metrics, which
//     does not stop the world;
//   - process_resident_memory_bytes: the resident set size from
//     /proc/self/statm, only where that file exists.
//
// The names are client_golang's, so existing dashboards work.
func (r *Registry) RegisterRuntime() {
	r.GaugeFunc("go_goroutines", "Number of goroutines that currently exist.", func() float64 {
		return float64(runtime.NumGoroutine())
	})
	r.GaugeFunc("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", heapInuse)
	if _, err := residentBytes(); err == nil {
		r.GaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes.", func() float64 {
			v, err := residentBytes()
			if err != nil {
				return 0
			}
			return v
		})
	}
}

// heapInuse is HeapInuse from runtime/metrics: heap memory holding objects
// plus heap memory reserved for objects but unused.
func heapInuse() float64 {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	metrics.Read(s)
	var sum float64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			sum += float64(x.Value.Uint64())
		}
	}
	return sum
}

// residentBytes reads the second field of /proc/self/statm (resident
// pages).
func residentBytes() (float64, error) {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(data)
	if len(f) < 2 {
		return 0, strconv.ErrSyntax
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0, err
	}
	return float64(pages) * float64(os.Getpagesize()), nil
}
