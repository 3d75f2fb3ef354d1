package zmtp

import "runtime"

// memAlloc returns the bytes allocated by the process so far.
func memAlloc() int {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int(ms.TotalAlloc)
}
