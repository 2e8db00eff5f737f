#!/bin/sh
# Installs what train.py and run.sh need when it is missing (Debian, as
# root): PyTorch, NumPy, Pillow, SentencePiece's spm_train / spm_encode, and
# OpenBLAS. Without OpenBLAS, Debian's python3-torch falls back to the
# reference BLAS (libblas3), and a training step is several times slower
# (docs/demo-model.md, session 12).
set -eu
need=""
/usr/bin/python3 -c 'import torch, numpy, PIL' 2>/dev/null || need="$need python3-torch python3-numpy python3-pil"
command -v spm_train >/dev/null 2>&1 && command -v spm_encode >/dev/null 2>&1 || need="$need sentencepiece"
ls /usr/lib/*/openblas-pthread/libblas.so.3 >/dev/null 2>&1 || need="$need libopenblas0-pthread"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "train/deps.sh: missing$need; install them (apt-get install$need) as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $need || { apt-get update && apt-get install -y --no-install-recommends $need; }
