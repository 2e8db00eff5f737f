#!/bin/sh
# Reproduces palid's bundled demo model (models/default) from this repository:
# the synthetic data (palid synth), the SentencePiece tokenizer (spm_train),
# stage 0 (SigLIP + dense head), stage 1 (ViT frozen: projector + T5),
# stages 3 to 10 (all, ViT included; 9 and 10 on a second tokenizer whose
# answer words are whole pieces), a "where"-only phase and six stage 11
# runs after it, thirty motion runs (the clips; the ViT frozen
# in the first seven) with the means of sibling runs' weights between
# them and dense phases on the ViT before motion19 and motion20, before
# each of motion22 to motion25, before motion26 and motion27 (from
# motion25 read back as palid runs it) and before the last three, the
# held-out evaluation, the export to
# the Hugging Face layout, and palid convert.
#
# Needs Go, Debian's python3-torch, python3-numpy, python3-pil,
# sentencepiece and OpenBLAS (scripts/deps.sh train installs them when missing).
# Runs on 2 threads (TRAIN_THREADS), about 19 hours. Every
# seed is fixed.
#
#   train/run.sh            # everything, into train/work and models/default
#   WORK=/tmp/w train/run.sh
#   TRAIN_BF16=1 train/run.sh   # training steps in bfloat16: several times
#                               # faster on a CPU with AMX (about 8 times
#                               # slower on one without), about 4 hours
#                               # (estimated from step times);
#                               # not yet run end to end (docs/demo-model.md,
#                               # session 12)
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${WORK:-$ROOT/train/work}
DATA=$WORK/data
OUT=$WORK/out
QUANT=${QUANT:-q8_0}
PY=/usr/bin/python3
mkdir -p "$DATA" "$OUT"
./scripts/deps.sh train

go build -o "$WORK/palid" ./cmd/palid
P=$WORK/palid

# The datasets and both tokenizers (data.sh): training seeds 1 and 2,
# held-out 9 and 8, validation 10 and 11.
WORK=$WORK ./train/data.sh

cd "$ROOT/train"
# Stage 0 (SigLIP ViT with a dense per-patch head on the label maps), the
# ViT continued on the dense loss alone (stage0-dense), stage 1 (ViT frozen,
# its features cached: projector + T5, loss per answer), then stage 3 (the
# joint run, ViT included at half the rate) straight from stage 1: stage 2
# is skipped (pali2.pt is stage 1's model); stages 4 and 5 continue stage 3.
# docs/demo-model.md, session 6.
[ -f "$OUT/vit.pt" ] || DENSE=5 STAGE0_LR=2e-3 STAGE0_STEPS=1500 $PY train.py stage0 "$DATA" "$OUT"
[ -f "$OUT/vit-siglip.pt" ] || STAGE0D_STEPS=2000 $PY train.py stage0-dense "$DATA" "$OUT"
[ -f "$OUT/pali1.pt" ] || STAGE1_PER_ANSWER=1 STAGE1_ZLOSS=1e-3 STAGE1_STEPS=1400 EVAL_EVERY=700 \
	$PY train.py stage1 "$DATA" "$OUT"
[ -f "$OUT/pali2.pt" ] || cp "$OUT/pali1.pt" "$OUT/pali2.pt"
[ -f "$OUT/pali3.pt" ] || STAGE3_STEPS=1500 STAGE3_VIT_SCALE=0.5 $PY train.py stage3 "$DATA" "$OUT"
# Stage 4: stage 3 continued at half its rate, a clip batch every 3rd step.
[ -f "$OUT/pali4.pt" ] || STAGE4_STEPS=1500 STAGE4_LR=5e-4 STAGE4_VIT_SCALE=0.5 STAGE4_ZLOSS=0 STAGE4_AUX=0 \
	STAGE4_CLIP_EVERY=3 $PY train.py stage4 "$DATA" "$OUT"
# Stage 5: from stage 4, lr 3e-4, 1,000 steps, a clip batch every other step.
[ -f "$OUT/pali5.pt" ] || $PY train.py stage5 "$DATA" "$OUT"
# Stage 6: stage0-dense's dense head back on the ViT's tokens, "where" and
# counts sampled 3x and 2x, lr 5e-4, 2,000 steps. Stage 7: each answer's
# loss summed over its tokens instead of averaged, lr 3e-4, 1,200 steps.
# Stage 8: stage 7 once more (same settings). The shipped runs had one
# thread each (two experiments side by side).
[ -f "$OUT/pali6.pt" ] || TRAIN_THREADS=1 $PY train.py stage6 "$DATA" "$OUT"
[ -f "$OUT/pali7.pt" ] || TRAIN_THREADS=1 $PY train.py stage7 "$DATA" "$OUT"
[ -f "$OUT/pali8.pt" ] || TRAIN_THREADS=1 $PY train.py stage8 "$DATA" "$OUT"

# The second tokenizer (data.sh: every one-word answer that the first
# split, right = ▁ r ig h t, is one piece), stage 8's model moved to it (the
# embedding rows of shared pieces kept), and stage 9 on it: stage 8's
# settings at lr 5e-4, 1,500 steps. docs/demo-model.md, session 8.
DATA2=$WORK/data-tok2
OUT2=$WORK/out-tok2
mkdir -p "$OUT2"
[ -f "$OUT2/pali8.pt" ] || $PY train.py retokenize "$DATA" "$OUT" "$DATA2" "$OUT2" 8
[ -f "$OUT2/pali9.pt" ] || TRAIN_THREADS=1 $PY train.py stage9 "$DATA2" "$OUT2"
# Stage 10: from stage 9, lr 3e-4, 800 steps, the sampling weights of
# "where" 3, counts 3 and the sign's code (ocr) 4 (the other tasks 1).
[ -f "$OUT2/pali10.pt" ] || TRAIN_THREADS=1 $PY train.py stage10 "$DATA2" "$OUT2"

# The row (docs/demo-model.md, sessions 9 to 11): stage 10's model answers
# "top" and "bottom" at chance. A "where"-only phase (600 steps, lr 1e-3, the
# ViT included) teaches it the row and costs the other tasks; stage 11, run
# again and again from the previous run's model, wins them back. Each run
# has its own directory and starts from the previous run's model and dense
# head (STAGE11_FROM, STAGE11_HEAD_FROM; after the "where"-only phase,
# stage 10's dense head).
W=$OUT2/where
mkdir -p "$W"
[ -f "$W/pali-where.pt" ] || WHERE_FROM="$OUT2/pali10.pt" TRAIN_THREADS=1 $PY train.py where-only "$DATA2" "$W"
prev=$W/pali-where.pt
prev_head=$OUT2/dense_head10.pt
joint() { # joint NAME [VAR=value ...]: one stage 11 run after the previous one
	d=$OUT2/$1
	shift
	mkdir -p "$d"
	[ -f "$d/pali11.pt" ] || env TRAIN_THREADS=1 STAGE11_FROM="$prev" STAGE11_HEAD_FROM="$prev_head" "$@" \
		$PY train.py stage11 "$DATA2" "$d"
	prev=$d/pali11.pt
	prev_head=$d/dense_head11.pt
	OUT=$d
}
joint row1 STAGE11_WEIGHTS=where=6,count=3,ocr=4
joint row2 STAGE11_WEIGHTS=where=6,count=3,ocr=4 STAGE11_STEPS=1000
joint row3 STAGE11_WEIGHTS=where=6,count=3,ocr=4 TRAIN_THREADS=2
joint row4 STAGE11_SEED=112 STAGE11_STEPS=1000 STAGE11_LR=2e-4 \
	STAGE11_WEIGHTS=where=4,count=3,ocr=4,count:2=4,count:3=8
joint row5 STAGE11_SEED=115 STAGE11_STEPS=600 STAGE11_LR=2e-4 STAGE11_WEIGHTS=where=3,count=3,ocr=4,count:2=2,count:3=2
joint row6 STAGE11_SEED=118 STAGE11_STEPS=600 STAGE11_LR=2e-4 STAGE11_WEIGHTS=where=3,count=3,ocr=6,caption=2

# The clips (docs/demo-model.md, sessions 13 and 14): row6's model (session
# 11's out55) learns motion only with a per-patch motion target on the T5
# encoder's visual tokens and the encoder's first block fresh. The ViT stays
# frozen until motion8, so the first run's cached features serve motion2 to 7
# (motion8 and motion9 read pixels and leave their links unused).
# motion1: frames 0 and 15 only; motion2: 4, 8 or 16 frames; motion3 to
# motion7: 8 or 16 frames, fewer clip steps and "is there" sampled 2x from
# motion5 on, the single-frame tasks won back. motion1 to motion9 are
# session 14's m7, m8, m9, m10, m11a, m12a, m13b, m15v and m16w.
M=$OUT2/motion
mkdir -p "$M"
# motion1 to motion9 were trained in bfloat16 on a CPU with AMX; without
# bfloat16 instructions (amx_bf16, avx512_bf16) PyTorch's autocast is about
# 8 times slower than float32 (session 16), so they run in float32 there.
if grep -qw 'amx_bf16\|avx512_bf16' /proc/cpuinfo 2>/dev/null; then MOTION_BF16=1; else MOTION_BF16=0; fi
MOTION_BF16=${TRAIN_BF16:-$MOTION_BF16}
motion() { # motion NAME [VAR=value ...]: one motion run after the previous one
	d=$M/$1
	shift
	mkdir -p "$d"
	if [ "$d" != "$M/motion1" ]; then
		ln -sf ../motion1/scenes.feat.pt "$d/scenes.feat.pt"
		ln -sf ../motion1/clips.feat.pt "$d/clips.feat.pt"
	fi
	[ -f "$d/pali-motion.pt" ] || env TRAIN_BF16="$MOTION_BF16" MOTION_FROM="$prev" MOTION_W=3 MOTION_CLIP_BATCH=8 "$@" \
		$PY train.py motion "$DATA2" "$d"
	prev=$d/pali-motion.pt
	OUT=$d
}
motion motion1 MOTION_REINIT=language_model.encoder.block.0. MOTION_STEPS=1500 MOTION_LR=1e-3 MOTION_FRAMES=2
motion motion2 MOTION_STEPS=1200 MOTION_LR=5e-4 MOTION_FRAMES=4,8,16 MOTION_SEED=22
motion motion3 MOTION_STEPS=1200 MOTION_LR=3e-4 MOTION_FRAMES=8,16 MOTION_CLIP_EVERY=3 MOTION_SEED=23
motion motion4 MOTION_STEPS=1000 MOTION_LR=3e-4 MOTION_FRAMES=8,16 MOTION_CLIP_EVERY=4 MOTION_SEED=24
W5=where=3,count=2,ocr=6,caption=2,exists=2
motion motion5 MOTION_STEPS=1500 MOTION_LR=2e-4 MOTION_FRAMES=8,16 MOTION_CLIP_EVERY=6 MOTION_SEED=25 MOTION_WEIGHTS=$W5
motion motion6 MOTION_STEPS=1500 MOTION_LR=2e-4 MOTION_FRAMES=8,16 MOTION_CLIP_EVERY=6 MOTION_SEED=27 MOTION_WEIGHTS=$W5
motion motion7 MOTION_STEPS=1500 MOTION_LR=2e-4 MOTION_FRAMES=8,16 MOTION_CLIP_EVERY=4 MOTION_SEED=30 MOTION_WEIGHTS=$W5
# motion8: the ViT trained too, at half the rate, with a dense head on its
# tokens (fitted fresh first), and the motion head motion7 left.
motion motion8 MOTION_STEPS=1500 MOTION_LR=2e-4 MOTION_FRAMES=8,16 MOTION_CLIP_EVERY=4 MOTION_SEED=32 MOTION_WEIGHTS=$W5 \
	MOTION_VIT_SCALE=0.5 MOTION_DENSE=1 MOTION_HEAD_FROM="$M/motion7/motion_head.pt"
# motion9: as motion8, the ViT at the full rate, motion8's motion head and
# a dense head fitted afresh.
motion motion9 MOTION_STEPS=1500 MOTION_LR=2e-4 MOTION_FRAMES=8,16 MOTION_CLIP_EVERY=4 MOTION_SEED=34 MOTION_WEIGHTS=$W5 \
	MOTION_VIT_SCALE=1 MOTION_DENSE=1 MOTION_HEAD_FROM="$M/motion8/motion_head.pt"
# motion10 and motion11 (session 16's m17i and m18i, in float32): a clip
# batch every 3rd step. Session 16 started motion10 from motion9's model
# read back from models/default (train.py import: its Q8_0 weights), with a
# motion head fitted first (MOTION_HEAD_FIT) and a dense head fitted
# afresh, as here; motion11 keeps motion10's heads, 1,200 steps.
motion motion10 MOTION_STEPS=1500 MOTION_LR=2e-4 MOTION_FRAMES=8,16 MOTION_CLIP_EVERY=3 MOTION_SEED=36 MOTION_WEIGHTS=$W5 \
	MOTION_VIT_SCALE=1 MOTION_DENSE=1 MOTION_HEAD_FIT=200 TRAIN_THREADS=1
motion motion11 MOTION_STEPS=1200 MOTION_LR=2e-4 MOTION_FRAMES=8,16 MOTION_CLIP_EVERY=3 MOTION_SEED=37 MOTION_WEIGHTS=$W5 \
	MOTION_VIT_SCALE=1 MOTION_DENSE=1 MOTION_HEAD_FROM="$M/motion10/motion_head.pt" \
	MOTION_DENSE_FROM="$M/motion10/dense_head.pt" TRAIN_THREADS=1
# motion12 (session 17's m19a): motion11 once more. motion13 and motion14
# (m20a, m20b): two runs from motion12 with their own seeds. The shipped
# model is the mean of the three's weights (train.py average; s20c): chosen
# among the runs and means on a validation set (seeds 10 and 11), not the
# held-out one (docs/demo-model.md).
motion motion12 MOTION_STEPS=1200 MOTION_LR=2e-4 MOTION_FRAMES=8,16 MOTION_CLIP_EVERY=3 MOTION_SEED=38 MOTION_WEIGHTS=$W5 \
	MOTION_VIT_SCALE=1 MOTION_DENSE=1 MOTION_HEAD_FROM="$M/motion11/motion_head.pt" \
	MOTION_DENSE_FROM="$M/motion11/dense_head.pt" TRAIN_THREADS=1
# siblings FROM N...: a motion run motionN from FROM (a directory holding
# pali-motion.pt and the heads) for each N, seed 26+N.
siblings() {
	from=$1
	shift
	for n in "$@"; do
		motion motion$n MOTION_FROM="$from/pali-motion.pt" MOTION_STEPS=1200 MOTION_LR=2e-4 MOTION_FRAMES=8,16 \
			MOTION_CLIP_EVERY=3 MOTION_SEED=$((26 + n)) MOTION_WEIGHTS=$W5 MOTION_VIT_SCALE=1 MOTION_DENSE=1 \
			MOTION_HEAD_FROM="$from/motion_head.pt" MOTION_DENSE_FROM="$from/dense_head.pt" TRAIN_THREADS=1
	done
}
# mean OUT N...: the mean of motionN's weights and of their heads in OUT.
mean() {
	out=$1
	shift
	for h in pali-motion motion_head dense_head centre_head; do
		[ -f "$M/motion$1/$h.pt" ] || continue # the centre head: session 23 on
		f=$out/$h.pt
		[ "$h" != pali-motion ] || f=$out
		[ -f "$out/$h.pt" ] || $PY train.py average "$f" $(for n in "$@"; do echo "$M/motion$n/$h.pt"; done)
	done
}
siblings "$M/motion12" 13 14
mean "$M/average" 12 13 14
# motion15 and motion16 (session 18's m21a, m21b): two runs from that mean,
# seeds 41 and 42, from its members' heads averaged likewise; their mean
# (s21) was chosen on the validation set. motion17 and motion18 (m22a,
# m22b): the same again from it; the shipped model is their mean (s22).
siblings "$M/average" 15 16
mean "$M/average2" 15 16
siblings "$M/average2" 17 18
mean "$M/average3" 17 18
# Session 21: the ViT names only 89% of the objects' shapes, so a dense
# phase (d0: stage0-dense from average3's whole model, the dense loss
# alone, 1,500 steps) lifts them to 95%; motion19 and motion20 (m30a,
# m30b) follow from it with clips also played backwards, seeds 58 and 59,
# average3's motion head and the dense phase's dense head; their mean
# (average4, s30), then motion21 (m31a: a clip batch every other step,
# 1,000 steps, seed 60). Session 22: a second dense phase from motion21
# (dense2, d31: 3,000 steps), then motion22 (m32a: from it, a clip batch
# every other step, 1,200 steps, seed 62, motion21's motion head and
# dense2's dense head); then the same again from motion22 (dense3, d32;
# motion23, m34a: 1,000 steps, seed 64, two threads). Session 23: two
# more rounds with each object's centre asked for (dense4, motion24;
# dense5, motion25). Session 24: one more from motion25 read back, and
# the mean of its two runs (average5); then one more from that and the
# mean of its three runs (average6), the shipped model.
# dense_phase DIR FROM STEPS THREADS [VAR=value ...]: FROM's ViT and the
# dense head beside it continued on the dense loss alone (train.py
# stage0-dense), into DIR.
dense_phase() {
	dir=$1 from=$2 steps=$3 threads=$4
	shift 4
	[ -f "$dir/pali.pt" ] || env STAGE0D_FROM="$from" STAGE0D_VIT_ADD=0 STAGE0D_STEPS="$steps" \
		TRAIN_THREADS="$threads" "$@" $PY train.py stage0-dense "$DATA2" "$dir"
}
# late NAME FROM MOTION_HEAD DENSE_HEAD [VAR=value ...]: a motion run as
# sessions 21 and 22 made them: the ViT at the full rate with a dense
# head, clips also played backwards.
late() {
	name=$1 start=$2 mhead=$3 dhead=$4
	shift 4
	motion "$name" MOTION_FROM="$start" MOTION_LR=2e-4 MOTION_FRAMES=8,16 MOTION_WEIGHTS=$W5 MOTION_VIT_SCALE=1 \
		MOTION_DENSE=1 MOTION_HEAD_FROM="$mhead" MOTION_DENSE_FROM="$dhead" MOTION_CLIP_REVERSE=0.5 "$@"
}
dense_phase "$M/dense" "$M/average3/pali-motion.pt" 1500 1
for n in 19 20; do
	late motion$n "$M/dense/pali.pt" "$M/average3/motion_head.pt" "$M/dense/dense_head.pt" \
		MOTION_STEPS=1200 MOTION_CLIP_EVERY=3 MOTION_SEED=$((39 + n)) TRAIN_THREADS=1
done
mean "$M/average4" 19 20
late motion21 "$M/average4/pali-motion.pt" "$M/average4/motion_head.pt" "$M/average4/dense_head.pt" \
	MOTION_STEPS=1000 MOTION_CLIP_EVERY=2 MOTION_SEED=60 TRAIN_THREADS=2
# dense_round K N STEPS SEED THREADS [CENTRE]: a dense phase ($M/denseK,
# 3,000 steps) from motion(N-1), then motionN from it (a clip batch every
# other step) with motion(N-1)'s motion head and the dense phase's dense
# head. With CENTRE = w, both also ask each object patch's token for its
# object's centre, w times (STAGE0D_CENTRE, MOTION_CENTRE; the centre head
# motion(N-1) left, if any, then the dense phase's).
dense_round() {
	dk=$M/dense$1
	last=$M/motion$(($2 - 1))
	chead=
	[ ! -f "$last/centre_head.pt" ] || chead=$last/centre_head.pt
	dense_phase "$dk" "$last/pali-motion.pt" 3000 "$5" STAGE0D_CENTRE="${6:-0}" STAGE0D_CENTRE_FROM="$chead"
	late motion$2 "$dk/pali.pt" "$last/motion_head.pt" "$dk/dense_head.pt" \
		MOTION_STEPS=$3 MOTION_CLIP_EVERY=2 MOTION_SEED=$4 TRAIN_THREADS=$5 \
		MOTION_CENTRE="${6:-0}" MOTION_CENTRE_FROM="$dk/centre_head.pt"
}
dense_round 2 22 1200 62 1
dense_round 3 23 1000 64 2
# Session 23: the ViT's tokens told their object's x to 3.2 pixels and its
# y to 4.8 (train.py rows); a round with the centre asked for (dense4,
# d34c; motion24, m35c: seed 66, one thread) lifts the vertical directions.
dense_round 4 24 1000 66 1 0.3
# And once more from motion24 (dense5, d35c, with motion24's centre head;
# motion25, m36c: seed 67, one thread).
dense_round 5 25 1000 67 1 0.3
# Session 24 (train/work was gone): the round starts from motion25 as
# models/default held it, read back (import25: exported, converted to Q8_0
# and train.py import: the weights as palid runs them, without the heads):
# a dense phase (dense6, d37c) with a fresh dense head fitted first
# (STAGE0D_HEAD_FIT) and the centre asked for, two motion runs from it
# (motion26, motion27: m37a and m37b, seeds 69 and 70, one thread each)
# with a fresh motion head fitted first (MOTION_HEAD_FIT), and their mean
# (average5, s37).
I=$M/import25
if [ ! -f "$I/pali.pt" ]; then
	$PY train.py export "$DATA2" "$M/motion25" "$I/hf"
	"$P" convert -quiet --out "$I/q8_0" --quant q8_0 "$I/hf"
	$PY train.py import "$DATA2" "$I/q8_0" "$I"
fi
dense_phase "$M/dense6" "$I/pali.pt" 3000 2 STAGE0D_HEAD_FIT=300 STAGE0D_CENTRE=0.3
for n in 26 27; do
	late motion$n "$M/dense6/pali.pt" "" "$M/dense6/dense_head.pt" MOTION_STEPS=1000 MOTION_CLIP_EVERY=2 \
		MOTION_SEED=$((43 + n)) TRAIN_THREADS=1 MOTION_HEAD_FIT=200 MOTION_CENTRE=0.3 \
		MOTION_CENTRE_FROM="$M/dense6/centre_head.pt"
done
mean "$M/average5" 26 27
# And once more from average5 (dense7, d38c: average5's dense and centre
# heads; motion28 to motion30: m38a, m38b, m38c, seeds 71 to 73, one
# thread each, average5's motion head), and the mean of the three
# (average6, s38): the shipped model.
dense_phase "$M/dense7" "$M/average5/pali-motion.pt" 3000 2 STAGE0D_CENTRE=0.3 \
	STAGE0D_CENTRE_FROM="$M/average5/centre_head.pt"
for n in 28 29 30; do
	late motion$n "$M/dense7/pali.pt" "$M/average5/motion_head.pt" "$M/dense7/dense_head.pt" MOTION_STEPS=1000 \
		MOTION_CLIP_EVERY=2 MOTION_SEED=$((43 + n)) TRAIN_THREADS=1 MOTION_CENTRE=0.3 \
		MOTION_CENTRE_FROM="$M/dense7/centre_head.pt"
done
mean "$M/average6" 28 29 30
OUT=$M/average6
DATA=$DATA2
EVAL_ITEMS=${EVAL_ITEMS:-100} $PY train.py eval "$DATA" "$OUT"
$PY train.py export "$DATA" "$OUT" "$OUT/hf"
cd "$ROOT"
# Convert into a temporary directory, then move into place, so that
# models/default is never half-written.
rm -rf models/default.new
"$P" convert --out models/default.new --quant "$QUANT" "$OUT/hf"
rm -rf models/default.old
[ ! -d models/default ] || mv models/default models/default.old
mv models/default.new models/default
rm -rf models/default.old
