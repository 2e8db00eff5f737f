#!/bin/sh
# ship.sh NAME: work/NAME's model exported (Hugging Face layout, work/NAME/hf),
# converted to f32, q8_0 and q4_0 (work/NAME/QUANT) and run through palid on
# the held-out questions PyTorch's eval answers (work/heldout): the answers in
# work/NAME/QUANT.tsv, the accuracy in work/NAME/QUANT.json.
set -eu
cd "$(dirname "$0")/.."
n=$1
[ -f work/$n/pali.pt ] || cp work/$n/pali-motion.pt work/$n/pali.pt
[ -f work/$n/hf/model.safetensors ] || /usr/bin/python3 train.py export work/data-tok2 work/$n work/$n/hf
(cd .. && go build -o train/work/evalpalid-bin ./train/evalpalid)
for q in f32 q8_0 q4_0; do
	[ -f work/$n/$q/model.gguf ] || work/palid convert -quiet --out work/$n/$q --quant $q work/$n/hf
	work/evalpalid-bin -v --model work/$n/$q work/heldout/scenes work/heldout/clips \
		> work/$n/$q.json 2> work/$n/$q.tsv
	cat work/$n/$q.json
done
