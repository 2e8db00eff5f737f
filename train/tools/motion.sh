#!/bin/sh
# motion.sh NAME FROM [VAR=value ...]: a motion run (session 21's late settings)
# from checkpoint FROM into work/NAME, then the held-out evaluation
# (first 100 scenes and clips); all output in work/NAME/stdout, ending "done".
set -u
cd "$(dirname "$0")/.."
n=$1 from=$2
shift 2
mkdir -p work/$n
{
	env TRAIN_BF16=0 MOTION_FROM="$from" MOTION_W=3 MOTION_CLIP_BATCH=8 MOTION_LR=2e-4 MOTION_FRAMES=8,16 \
		MOTION_WEIGHTS=where=3,count=2,ocr=6,caption=2,exists=2 MOTION_VIT_SCALE=1 MOTION_DENSE=1 "$@" \
		/usr/bin/python3 train.py motion work/data-tok2 work/$n
	env "$@" EVAL_ITEMS=100 CKPT=work/$n/pali-motion.pt /usr/bin/python3 train.py eval work/data-tok2 work/$n
	echo done
} > work/$n/stdout 2>&1
