package spm

import (
	"encoding/binary"
	"errors"
)

// charsMap is a decoded precompiled charsmap: a darts-clone double-array
// trie whose values are offsets into a blob of NUL-terminated replacement
// strings. The blob is <trie size uint32 LE><trie units><strings>.
type charsMap struct {
	units      []uint32
	normalized []byte
}

// decodeCharsMap splits a precompiled charsmap as
// Normalizer::DecodePrecompiledCharsMap does.
func decodeCharsMap(blob []byte) (*charsMap, error) {
	if len(blob) <= 4 {
		return nil, errors.New("precompiled charsmap is broken: blob too short")
	}
	size := binary.LittleEndian.Uint32(blob)
	if uint64(size) >= uint64(len(blob)) {
		return nil, errors.New("precompiled charsmap is broken: trie size exceeds the blob")
	}
	body := blob[4:]
	trie := body[:size]
	cm := &charsMap{
		units:      make([]uint32, len(trie)/4),
		normalized: body[size:],
	}
	for i := range cm.units {
		cm.units[i] = binary.LittleEndian.Uint32(trie[4*i:])
	}
	return cm, nil
}

// Accessors of a darts-clone unit.
func dartsHasLeaf(u uint32) bool  { return (u>>8)&1 == 1 }
func dartsValue(u uint32) uint32  { return u & (1<<31 - 1) }
func dartsLabel(u uint32) uint32  { return u & (1<<31 | 0xff) }
func dartsOffset(u uint32) uint32 { return (u >> 10) << ((u & (1 << 9)) >> 6) }

// longestPrefix is darts-clone's commonPrefixSearch over key keeping the
// longest match: its length in bytes and its value (0, 0 when none).
// Positions outside the array end the search, where the C++ would read
// out of bounds.
func (cm *charsMap) longestPrefix(key string) (length, value int) {
	units := cm.units
	if len(units) == 0 {
		return 0, 0
	}
	pos := dartsOffset(units[0])
	for i := 0; i < len(key); i++ {
		c := uint32(key[i])
		pos ^= c
		if int(pos) >= len(units) {
			return
		}
		u := units[pos]
		if dartsLabel(u) != c {
			return
		}
		pos ^= dartsOffset(u)
		if dartsHasLeaf(u) {
			if int(pos) >= len(units) {
				return
			}
			length, value = i+1, int(dartsValue(units[pos]))
		}
	}
	return
}

// replacement returns the NUL-terminated string at offset v of the blob.
func (cm *charsMap) replacement(v int) string {
	if v >= len(cm.normalized) {
		return ""
	}
	s := cm.normalized[v:]
	for i, b := range s {
		if b == 0 {
			return string(s[:i])
		}
	}
	return string(s)
}
