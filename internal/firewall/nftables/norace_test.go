//go:build !race

package nftables

const raceEnabled = false
