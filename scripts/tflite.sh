#!/bin/sh
# tflite.sh fetches, once, the TFLite C library (2.2.0, linux x86-64, from the
# npm package node-tflite@0.0.2) and MediaPipe's face detection model (npm
# @mediapipe/face_detection@0.4.1657300184) that delegate/'s tests run, into
# a cache directory, and prints the library's path on stdout.
#
#   PALID_TFLITE_LIB=$(./scripts/tflite.sh) go test ./delegate/...
#
# The cache is $PALID_TFLITE_CACHE, default .cache/tflite at the repository
# root. A second run with the files in place does nothing and needs no
# network. The face model lands next to the library's package directory in
# mediapipe/package/face_detection_short_range.tflite (the tests find it
# from the library path). Everything it prints besides the path goes to stderr.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${PALID_TFLITE_CACHE:-$root/.cache/tflite}
lib=$cache/node-tflite/package/tflite/linux_x86_64/libtensorflowlite_c.so
face=$cache/mediapipe/package/face_detection_short_range.tflite

fetch() { # fetch NPM-SPEC DIR
	dir=$cache/$2
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	echo "tflite: npm pack $1" >&2
	(cd "$dir.tmp" && npm pack --silent "$1" >/dev/null) ||
		{ echo "tflite: npm pack $1 failed" >&2; exit 1; }
	tgz=$(ls "$dir.tmp"/*.tgz)
	tar -xzf "$tgz" -C "$dir.tmp" || { echo "tflite: cannot extract $tgz" >&2; exit 1; }
	rm -f "$tgz"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
}

case $(uname -m) in
x86_64) ;;
*) echo "tflite: the npm package holds a linux x86-64 build only, this is $(uname -m)" >&2; exit 1 ;;
esac
command -v npm >/dev/null 2>&1 || { echo "tflite: npm is needed (Debian package npm)" >&2; exit 1; }

[ -f "$lib" ] || fetch node-tflite@0.0.2 node-tflite
[ -f "$face" ] || fetch @mediapipe/face_detection@0.4.1657300184 mediapipe
[ -f "$lib" ] || { echo "tflite: $lib missing after extracting node-tflite" >&2; exit 1; }
[ -f "$face" ] || { echo "tflite: $face missing after extracting the face model" >&2; exit 1; }
echo "$lib"
