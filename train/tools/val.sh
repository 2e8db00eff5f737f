#!/bin/sh
# val.sh NAME [CKPT]: CKPT (work/NAME/pali-motion.pt) on the validation set
# (work/data-val, seeds 10 and 11, the first 100 scenes and clips), into
# work/val/NAME; prints the accuracy lines.
set -u
cd "$(dirname "$0")/.."
mkdir -p work/val/$1
TRAIN_THREADS=${TRAIN_THREADS:-1} EVAL_ITEMS=100 CKPT=${2:-work/$1/pali-motion.pt} \
	/usr/bin/python3 train.py eval work/data-val work/val/$1 > work/val/$1/stdout 2>&1
grep "eval " work/val/$1/train.log | tail -n 2
