//go:build race

package nftables

const raceEnabled = true
