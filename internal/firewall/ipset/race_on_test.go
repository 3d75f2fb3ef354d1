//go:build race

package ipset

// raceEnabled: the race detector multiplies memory use, so memory figures
// mean nothing under it.
const raceEnabled = true
