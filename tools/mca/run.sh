#!/bin/sh
# run.sh: static throughput analysis of the arm64 NEON kernels.
#
# Builds the neon test binary for arm64, disassembles it with
# aarch64-linux-gnu-objdump (which decodes the WORD-encoded SDOT/SMMLA/
# SMULL...), cuts out the inner loop of each kernel (from its CBZ loop
# head to the branch back) and runs llvm-mca on it for a Cortex-A76:
#
#   llvm-mca -mtriple=aarch64 -mcpu=cortex-a76 -mattr=+dotprod
#
# It prints, per kernel, the cycles per iteration (one Q8_0 block) that
# llvm-mca reports, the number of SDOT instructions in the body, and the
# fraction of the SDOT issue limit reached (Cortex-A76 issues 2 SDOT per
# cycle: limit = sdots/2 cycles per iteration).
#
# Needs Debian's binutils-aarch64-linux-gnu and llvm. Run from anywhere:
#   tools/mca/run.sh [kernel...]
set -eu
cd "$(dirname "$0")/../.."
MCA=${MCA:-llvm-mca}
CPU=${CPU:-cortex-a76}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GOARCH=arm64 CGO_ENABLED=0 go test -c -o "$tmp/neon.test" ./neon/
aarch64-linux-gnu-objdump -d --no-show-raw-insn "$tmp/neon.test" > "$tmp/dis.txt"
kernels=${*:-dotQ8ASIMD dotQ8SDOT dotQ8x2SDOT dotQ4Q8SDOT dotQ4Q8x2SDOT dotQ8x2SMMLA dotF32NEON}
printf '%-16s %8s %6s %10s %s\n' kernel cyc/iter sdots sdot-limit note
for k in $kernels; do
	# The function's lines, then the loop: from the first cbz to the
	# first unconditional branch after it, both excluded.
	awk -v sym="<github.com/palid/palid/neon.$k.abi0>:" '
		$2 == sym { on = 1; next }
		on && /^$/ { exit }
		on { sub(/^[ \t]*[0-9a-f]+:[ \t]*/, ""); print }' "$tmp/dis.txt" > "$tmp/$k.fn"
	awk '
		/^cbz/ && !inl { inl = 1; next }
		/^cmp/ && !inl { inl = 1; next }
		inl && /^b\.(lt|ge)/ { next }
		inl && /^b[ \t]/ { exit }
		inl { sub(/[ \t]*\/\/.*$/, ""); print }' "$tmp/$k.fn" > "$tmp/$k.loop"
	if [ ! -s "$tmp/$k.loop" ]; then
		echo "$k: loop not found" >&2
		continue
	fi
	attr=+dotprod
	note=""
	case $k in *SMMLA*) attr=+dotprod,+i8mm; note="(no i8mm timing in the A76 model)";; esac
	$MCA -mtriple=aarch64 -mcpu="$CPU" -mattr="$attr" -iterations=200 "$tmp/$k.loop" > "$tmp/$k.mca" 2>&1 || {
		echo "$k: llvm-mca failed:"; cat "$tmp/$k.mca"; continue; }
	cycles=$(awk '/^Total Cycles:/ { print $3 }' "$tmp/$k.mca")
	per=$(echo "$cycles / 200" | bc -l)
	n=$(grep -c '^sdot' "$tmp/$k.loop" || true)
	if [ "$n" -gt 0 ]; then
		ratio=$(echo "($n / 2) / $per * 100" | bc -l)
		printf '%-16s %8.2f %6d %9.0f%% %s\n' "$k" "$per" "$n" "$ratio" "$note"
	else
		printf '%-16s %8.2f %6d %10s %s\n' "$k" "$per" "$n" - "$note"
	fi
	if [ -n "${VERBOSE:-}" ]; then cat "$tmp/$k.loop"; sed -n '1,12p' "$tmp/$k.mca"; fi
done
