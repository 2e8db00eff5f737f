package spm

// unkPenalty is subtracted from the lowest piece score to score an
// unknown character (kUnkPenalty in unigram_model.cc).
const unkPenalty float32 = 10

// encodeUnigram is unigram::Model::EncodeOptimized: Viterbi over the
// lattice of vocabulary pieces, walked in UTF-8 byte positions and built
// on the fly. The arithmetic mirrors the C++ types: a piece's score and
// the path score are summed in double and stored as float, while the
// unknown path is summed in float.
func (m *Model) encodeUnigram(s string) []span {
	type best struct {
		score float32
		start int32 // -1: no path ends here yet
		id    int32
	}
	size := len(s)
	paths := make([]best, size+1)
	for i := range paths {
		paths[i] = best{start: -1, id: -1}
	}
	unkScore := m.minScore - unkPenalty
	t := m.vocab
	nodes := t.nodes
	for start := 0; start < size; {
		till := paths[start].score
		mblen := min(oneCharLen(s[start]), size-start)
		single := false
		n := int32(0)
		for pos := start; pos < size; {
			if n = t.child(n, s[pos]); n < 0 {
				break
			}
			pos++
			id := nodes[n].value
			if id < 0 {
				continue
			}
			p := &m.pieces[id]
			if p.Type == Unused {
				continue
			}
			length := pos - start
			var score float64
			if p.Type == UserDefined {
				score = float64(float32(length)*m.maxScore) - 0.1
			} else {
				score = float64(p.Score)
			}
			cand := score + float64(till)
			tgt := &paths[pos]
			if tgt.start == -1 || cand > float64(tgt.score) {
				tgt.score = float32(cand)
				tgt.start = int32(start)
				tgt.id = id
			}
			if length == mblen {
				single = true
			}
		}
		if !single {
			tgt := &paths[start+mblen]
			cand := unkScore + till
			if tgt.start == -1 || cand > tgt.score {
				tgt.score = cand
				tgt.start = int32(start)
				tgt.id = m.unk
			}
		}
		start += mblen
	}
	var out []span
	for end := size; end > 0; {
		b := paths[end]
		if b.start < 0 || int(b.start) >= end {
			break // unreachable for a well-formed lattice
		}
		out = append(out, span{begin: b.start, end: int32(end), id: b.id})
		end = int(b.start)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
