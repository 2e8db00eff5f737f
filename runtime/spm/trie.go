package spm

import (
	"slices"
	"strings"
)

// trie is a byte trie over a set of keys with int32 values, stored flat:
// the root has a 256-entry table and every other node a sorted run of
// edges. It answers the same questions as the darts-clone tries of the
// C++ (prefix search and step-by-step traversal).
type trie struct {
	root  [256]int32 // child of the root per byte, -1 when none
	nodes []trieNode
	edges []trieEdge
}

type trieNode struct {
	value     int32 // -1 when no key ends here
	edgeStart int32
	edgeCount int32
}

type trieEdge struct {
	label byte
	child int32
}

type trieKey struct {
	key   string
	value int32
}

// newTrie builds a trie over keys. A key is cut at its first NUL byte, as
// darts-clone reads keys as C strings; empty keys are dropped.
func newTrie(keys []trieKey) *trie {
	ks := make([]trieKey, 0, len(keys))
	for _, k := range keys {
		if i := strings.IndexByte(k.key, 0); i >= 0 {
			k.key = k.key[:i]
		}
		if k.key != "" {
			ks = append(ks, k)
		}
	}
	slices.SortStableFunc(ks, func(a, b trieKey) int { return strings.Compare(a.key, b.key) })
	t := &trie{nodes: []trieNode{{value: -1}}}
	for i := range t.root {
		t.root[i] = -1
	}
	// Node 0 is the root; its edges live in t.root. Nodes are built
	// breadth first from a work list (no recursion: keys may be long).
	type job struct {
		n     int32
		ks    []trieKey
		depth int
	}
	work := []job{{0, ks, 0}}
	for len(work) > 0 {
		j := work[0]
		work = work[1:]
		n, ks, depth := j.n, j.ks, j.depth
		if len(ks) > 0 && len(ks[0].key) == depth {
			// Equal keys: the first in sorted (stable) order wins.
			t.nodes[n].value = ks[0].value
			for len(ks) > 0 && len(ks[0].key) == depth {
				ks = ks[1:]
			}
		}
		start := int32(len(t.edges))
		count := int32(0)
		for len(ks) > 0 {
			c := ks[0].key[depth]
			k := 1
			for k < len(ks) && ks[k].key[depth] == c {
				k++
			}
			child := int32(len(t.nodes))
			t.nodes = append(t.nodes, trieNode{value: -1})
			if n == 0 {
				t.root[c] = child
			} else {
				t.edges = append(t.edges, trieEdge{c, child})
				count++
			}
			work = append(work, job{child, ks[:k], depth + 1})
			ks = ks[k:]
		}
		if n != 0 {
			t.nodes[n].edgeStart, t.nodes[n].edgeCount = start, count
		}
	}
	return t
}

// child returns the node reached from n by byte c, or -1.
func (t *trie) child(n int32, c byte) int32 {
	if n == 0 {
		return t.root[c]
	}
	nd := &t.nodes[n]
	es := t.edges[nd.edgeStart : nd.edgeStart+nd.edgeCount]
	if len(es) <= 8 {
		for _, e := range es {
			if e.label == c {
				return e.child
			}
		}
		return -1
	}
	lo, hi := 0, len(es)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es[m].label < c {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(es) && es[lo].label == c {
		return es[lo].child
	}
	return -1
}

// longestPrefix returns the length of the longest key that is a prefix of
// s, or 0 when none is.
func (t *trie) longestPrefix(s string) int {
	n, best := int32(0), 0
	for i := 0; i < len(s); i++ {
		if n = t.child(n, s[i]); n < 0 {
			break
		}
		if t.nodes[n].value >= 0 {
			best = i + 1
		}
	}
	return best
}

// empty reports whether the trie holds no key.
func (t *trie) empty() bool { return len(t.nodes) == 1 }
