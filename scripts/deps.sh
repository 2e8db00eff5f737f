#!/bin/sh
# deps.sh installs the system tools palid's tests need, when they are
# missing. It is run by `make test`; it fails loudly when it cannot install.
set -eu

missing=""
need() { # need COMMAND DEBIAN-PACKAGE
	command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
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
for c in mosquitto qemu-aarch64-static spm_encode spm_train; do
	command -v "$c" >/dev/null 2>&1 || { echo "deps: $c still missing after install" >&2; exit 1; }
done
