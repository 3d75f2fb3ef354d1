package scoring

const (
	chunkBits = 12
	chunkLen  = 1 << chunkBits // 4096 entries, about 750 KB
)

// entries is the table of entries, in fixed chunks rather than one slice:
// growing never copies, a million keys never need a second, doubled copy
// of the table alongside the first, and chunks emptied by forgetting are
// returned. Slots beyond n are zero.
type entries struct {
	chunks [][]entry
	n      uint32
}

func (e *entries) at(i uint32) *entry { return &e.chunks[i>>chunkBits][i&(chunkLen-1)] }

// grow adds a zero entry and returns its position.
func (e *entries) grow() uint32 {
	i := e.n
	if int(i>>chunkBits) == len(e.chunks) {
		e.chunks = append(e.chunks, make([]entry, chunkLen))
	}
	e.n++
	return i
}

// pop drops the last entry, keeping at most one spare chunk so that a
// table hovering at a chunk boundary does not allocate on every key.
func (e *entries) pop() {
	e.n--
	*e.at(e.n) = entry{}
	if keep := int(e.n>>chunkBits) + 2; len(e.chunks) > keep {
		e.chunks[len(e.chunks)-1] = nil
		e.chunks = e.chunks[:len(e.chunks)-1]
	}
}
