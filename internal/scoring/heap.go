package scoring

// item asks Tick to look at a key again at time at.
type item struct {
	at int64
	k  key
}

// before orders items by time, then by key, so that the order in which a
// tick handles keys is a function of the state alone.
func (a item) before(b item) bool { return a.at < b.at || a.at == b.at && a.k.less(b.k) }

// deadlines is a binary min-heap of items. Each key has at most one live
// item, whose time is the entry's heapAt; items whose time no longer
// matches are stale and skipped when they come out. Events only ever move
// a key's next deadline later, so they never touch the heap: the early
// item comes out, Tick finds nothing due and pushes the real deadline.
type deadlines []item

func (h *deadlines) push(it item) {
	*h = append(*h, it)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s[i].before(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *deadlines) pop() item {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	*h = s[:n]
	h.down(0)
	return top
}

func (h deadlines) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].before(h[l]) {
			m = r
		}
		if !h[m].before(h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// init orders an unordered heap in linear time.
func (h deadlines) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}
