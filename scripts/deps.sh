#!/bin/sh
# deps.sh installs the system tools palid's tests need, when they are
# missing. It is run by `make test`; it fails loudly when it cannot install.
# `deps.sh train` installs instead what train/ needs (make -C train,
# train/run.sh): PyTorch, NumPy, Pillow, SentencePiece and OpenBLAS, without
# which Debian's python3-torch falls back to the reference BLAS (libblas3)
# and a training step is several times slower (docs/demo-model.md, session 12).
set -eu

missing=""
need() { # need COMMAND DEBIAN-PACKAGE
	command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
if [ "${1:-}" = train ]; then
	/usr/bin/python3 -c 'import torch, numpy, PIL' 2>/dev/null || missing="$missing python3-torch python3-numpy python3-pil"
	need spm_encode sentencepiece
	need spm_train sentencepiece
	ls /usr/lib/*/openblas-pthread/libblas.so.3 >/dev/null 2>&1 || missing="$missing libopenblas0-pthread"
else
	need mosquitto mosquitto
	need mosquitto_sub mosquitto-clients
	need qemu-aarch64-static qemu-user-static
	need spm_encode sentencepiece
	need spm_train sentencepiece
	need ffmpeg ffmpeg
	need systemd-analyze systemd
	need chromium chromium
	need npm npm
	[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing="$missing libc6-arm64-cross"
fi

if [ -n "$missing" ]; then
	echo "deps: installing$missing" >&2
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			SUDO="sudo"
		else
			echo "deps: need root to apt-get install$missing (run as root or install them)" >&2
			exit 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq || { echo "deps: apt-get update failed" >&2; exit 1; }
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		{ echo "deps: apt-get install$missing failed" >&2; exit 1; }
fi
if [ "${1:-}" = train ]; then
	/usr/bin/python3 -c 'import torch, numpy, PIL' || { echo "deps: PyTorch still missing after install" >&2; exit 1; }
	set -- spm_encode spm_train
else
	set -- mosquitto qemu-aarch64-static spm_encode spm_train
fi
for c in "$@"; do
	command -v "$c" >/dev/null 2>&1 || { echo "deps: $c still missing after install" >&2; exit 1; }
done
