package spm

import "unicode/utf8"

// bpeSymbol is one symbol of the BPE work list: a byte range of the
// normalized text linked to its neighbours.
type bpeSymbol struct {
	begin, size int
	prev, next  int
	freeze      bool // a user-defined symbol, never merged
}

// bpePair is a candidate merge of symbols left and right.
type bpePair struct {
	left, right int
	score       float32
	size        int
}

// bpeAgenda is a max-heap of pairs: higher score first, then the
// leftmost, as bpe_model.cc's SymbolPairComparator orders them.
type bpeAgenda []bpePair

func (a bpeAgenda) less(i, j int) bool {
	return a[i].score > a[j].score || (a[i].score == a[j].score && a[i].left < a[j].left)
}

func (a *bpeAgenda) push(p bpePair) {
	h := append(*a, p)
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	*a = h
}

func (a *bpeAgenda) pop() bpePair {
	h := *a
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h.less(r, l) {
			c = r
		}
		if !h.less(c, i) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	*a = h
	return top
}

// encodeBPE is bpe::Model::SampleEncode without dropout: start from
// characters (user-defined symbols whole and frozen), repeatedly merge the
// adjacent pair that forms the best-scoring piece, then split merged
// UNUSED pieces back into the pieces they were made of.
func (m *Model) encodeBPE(s string) []span {
	symbols := make([]bpeSymbol, 0, utf8.RuneCountInString(s))
	for off := 0; off < len(s); {
		var n int
		freeze := false
		if m.norm.matcher != nil {
			if n = m.norm.matcher.longestPrefix(s[off:]); n > 0 {
				freeze = true
			}
		}
		if n == 0 {
			n = min(oneCharLen(s[off]), len(s)-off)
		}
		i := len(symbols)
		next := i + 1
		if off+n == len(s) {
			next = -1
		}
		symbols = append(symbols, bpeSymbol{begin: off, size: n, prev: i - 1, next: next, freeze: freeze})
		off += n
	}
	if len(symbols) == 0 {
		return nil
	}
	var revMerge map[string][2]string
	agenda := make(bpeAgenda, 0, len(symbols))
	add := func(left, right int) {
		if left < 0 || right < 0 || symbols[left].freeze || symbols[right].freeze {
			return
		}
		l, r := &symbols[left], &symbols[right]
		piece := s[l.begin : l.begin+l.size+r.size]
		id, ok := m.normal[piece]
		if !ok {
			return
		}
		agenda.push(bpePair{left: left, right: right, score: m.pieces[id].Score, size: len(piece)})
		if m.pieces[id].Type == Unused {
			if revMerge == nil {
				revMerge = make(map[string][2]string)
			}
			revMerge[piece] = [2]string{s[l.begin : l.begin+l.size], s[r.begin : r.begin+r.size]}
		}
	}
	for i := 1; i < len(symbols); i++ {
		add(i-1, i)
	}
	for len(agenda) > 0 {
		top := agenda.pop()
		l, r := &symbols[top.left], &symbols[top.right]
		if l.size == 0 || r.size == 0 || l.size+r.size != top.size {
			continue // stale
		}
		l.size += r.size
		l.next = r.next
		if r.next >= 0 {
			symbols[r.next].prev = top.left
		}
		r.size = 0
		add(l.prev, top.left)
		add(top.left, l.next)
	}
	out := make([]span, 0, len(symbols))
	var resegment func(begin int, w string, depth int)
	resegment = func(begin int, w string, depth int) {
		id := m.pieceToID(w)
		if id < 0 || m.pieces[id].Type != Unused || depth > len(s) {
			out = append(out, span{begin: int32(begin), end: int32(begin + len(w)), id: id})
			return
		}
		p, ok := revMerge[w]
		if !ok {
			out = append(out, span{begin: int32(begin), end: int32(begin + len(w)), id: id})
			return
		}
		resegment(begin, p[0], depth+1)
		resegment(begin+len(p[0]), p[1], depth+1)
	}
	for i := 0; i != -1; i = symbols[i].next {
		sym := symbols[i]
		resegment(sym.begin, s[sym.begin:sym.begin+sym.size], 0)
	}
	return out
}
