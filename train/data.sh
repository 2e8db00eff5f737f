#!/bin/sh
# Writes the datasets and tokenizers that train/run.sh trains and evaluates
# on into WORK (default train/work), skipping what is already there:
#
#   WORK/data       training scenes and clips (seeds 1, 2), held-out scenes
#                   and clips (seeds 9, 8; never used in training), and the
#                   first SentencePiece tokenizer (spm_train on the task text)
#   WORK/data-tok2  the same sets (links) with the second tokenizer, whose
#                   one-word answers are whole pieces (docs/demo-model.md,
#                   session 8); the bundled model's tokenizer
#   WORK/data-val   the validation set (seeds 10, 11) that models are chosen
#                   on, with data-tok2's tokenizer (session 17)
#   WORK/heldout    the held-out questions train.py eval asks (the first 100
#                   scenes and clips: EVAL_ITEMS=100), for tools/ship.sh
#
# Needs WORK/palid (run.sh builds it; built here when missing). About two
# minutes on two cores.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${WORK:-$ROOT/train/work}
DATA=$WORK/data
DATA2=$WORK/data-tok2
VAL=$WORK/data-val
PY=/usr/bin/python3
mkdir -p "$DATA" "$DATA2" "$VAL"
[ -x "$WORK/palid" ] || go build -o "$WORK/palid" ./cmd/palid
P=$WORK/palid

# Training and held-out data: the training seeds (1, 2) and the held-out
# seeds (9, 8) never share a scene (item seeds are seed*1e6 + i).
[ -f "$DATA/scenes/questions.jsonl" ] || "$P" synth --seed 1 --count 30000 --out "$DATA/scenes"
[ -f "$DATA/clips/questions.jsonl" ] || "$P" synth --seed 2 --count 4000 --clips --out "$DATA/clips"
[ -f "$DATA/eval-scenes/questions.jsonl" ] || "$P" synth --seed 9 --count 500 --out "$DATA/eval-scenes"
[ -f "$DATA/eval-clips/questions.jsonl" ] || "$P" synth --seed 8 --count 200 --clips --out "$DATA/eval-clips"
[ -f "$WORK/validation/scenes/questions.jsonl" ] || "$P" synth --seed 10 --count 500 --out "$WORK/validation/scenes"
[ -f "$WORK/validation/clips/questions.jsonl" ] || "$P" synth --seed 11 --count 200 --clips --out "$WORK/validation/clips"

# Tokenizer: a unigram SentencePiece model on the task text (T5 ids: pad 0, eos 1, unk 2).
SPM_FLAGS="--vocab_size=160 --model_type=unigram --character_coverage=1.0 --pad_id=0 --eos_id=1 --unk_id=2
	--bos_id=-1 --split_digits=true --hard_vocab_limit=false --input_sentence_size=1000000"
if [ ! -f "$DATA/spiece.model" ]; then
	$PY -c '
import json, sys
for f in sys.argv[1:]:
    for l in open(f):
        r = json.loads(l)
        print(r["prompt"]); print(r["answer"])
' "$DATA/scenes/questions.jsonl" "$DATA/clips/questions.jsonl" > "$DATA/text.txt"
	spm_train --input="$DATA/text.txt" --model_prefix="$DATA/spiece" $SPM_FLAGS
fi

# The second tokenizer: every one-word answer that the first split
# (right = ▁ r ig h t) is one piece.
for d in scenes clips eval-scenes eval-clips; do ln -sfn "../$(basename "$DATA")/$d" "$DATA2/$d"; done
[ -f "$DATA2/spiece.model" ] || spm_train --input="$DATA/text.txt" --model_prefix="$DATA2/spiece" $SPM_FLAGS \
	--user_defined_symbols=▁right,▁left,▁top,▁bottom,▁up,▁down,▁yes,▁no

ln -sfn ../validation/scenes "$VAL/eval-scenes"
ln -sfn ../validation/clips "$VAL/eval-clips"
cp "$DATA2/spiece.model" "$DATA2/spiece.vocab" "$VAL/"

# The held-out questions of train.py eval with EVAL_ITEMS=100, as palid
# datasets (their pictures linked), so that palid answers the same ones.
$PY - "$DATA" "$WORK/heldout" <<'PYEOF'
import json, os, sys
data, dst = sys.argv[1], sys.argv[2]
for src, name in [("eval-scenes", "scenes"), ("eval-clips", "clips")]:
    src, out = os.path.join(data, src), os.path.join(dst, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "questions.jsonl"), "w") as f:
        for line in open(os.path.join(src, "questions.jsonl")):
            r = json.loads(line)
            if r["seed"] % 1000000 >= 100:
                continue
            f.write(line)
            for im in r["images"]:
                p = os.path.join(out, im)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                if not os.path.lexists(p):
                    os.symlink(os.path.abspath(os.path.join(src, im)), p)
PYEOF
