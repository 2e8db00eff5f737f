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
# It prints, per kernel, the cycles per iteration (one block of 32
# quants; for the tile kernels one block of an 8-row group against 4
# tokens, T4, or 1 token, T1) that
# llvm-mca reports, the number of SDOT instructions in the body, and the
# fraction of the SDOT issue limit reached (Cortex-A76 issues 2 SDOT per
# cycle: limit = sdots/2 cycles per iteration). For the F32 GEMM tile
# (gemmF32T4x16NEON, four steps of p: 64 FMLA) and its one-row kernel
# (gemmF32T1x64NEON, one step: 16 FMLA) the column counts FMLAs, whose
# limit is also 2 per cycle.
#
# Needs Debian's binutils-aarch64-linux-gnu and llvm. Run from anywhere:
#   tools/mca/run.sh [kernel...]
set -eu
cd "$(dirname "$0")/../.."
MCA=${MCA:-llvm-mca}
CPU=${CPU:-cortex-a76}
# Second opinion: LLVM has no Cortex-A76 scheduling model of its own
# (-mcpu=cortex-a76 uses the Cortex-A57 one, 3-wide, 128-bit FP ops as
# two µops); the Neoverse N1 is the A76's server sibling (same core
# design) and has a detailed model. Debian: apt-get install llvm-19.
MCA2=${MCA2:-llvm-mca-19}
CPU2=${CPU2:-neoverse-n1}
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"' EXIT
GOARCH=arm64 CGO_ENABLED=0 go test -c -o "$tmp/neon.test" ./neon/
aarch64-linux-gnu-objdump -d --no-show-raw-insn "$tmp/neon.test" > "$tmp/dis.txt"
kernels=${*:-gemmF32T4x16NEON gemmF32T1x64NEON tileQ8T4SDOT tileQ4T4SDOT tileQ8T1SDOT tileQ4T1SDOT tileQ8T2ASIMD tileQ4T2ASIMD tileQ8T4SMMLA dotQ8ASIMD dotQ8SDOT dotQ8x2SDOT dotQ4Q8SDOT dotQ4Q8x2SDOT dotQ8x2SMMLA dotF32NEON}
printf '%-16s %6s %8s %6s %8s %6s\n' kernel sdots "$CPU" limit "$CPU2" limit
for k in $kernels; do
	# The function's lines, then the loop. Tile kernels (tile*) are
	# bottom-tested: from the target of the b.ne up to the b.ne (excluded,
	# as llvm-mca cannot parse its address operand). The older kernels test
	# at the top: from the first
	awk -v sym="<github.com/palid/palid/neon.$k.abi0>:" '
		$2 == sym { on = 1; next }
		on && /^$/ { exit }
		on { print }' "$tmp/dis.txt" > "$tmp/$k.addr"
	case $k in
	tile*|gemm*)
		target=$(awk '$2 == "b.ne" { print $3; exit }' "$tmp/$k.addr")
		awk -v t="$target:" '
			$1 == t { inl = 1 }
			inl && $2 == "b.ne" { exit }
			inl { l = $0; sub(/^[ \t]*[0-9a-f]+:[ \t]*/, "", l); sub(/[ \t]*\/\/.*$/, "", l); sub(/[ \t]*<.*$/, "", l); print l }
			inl && $2 == "b.ne" { exit }' "$tmp/$k.addr" > "$tmp/$k.loop"
		;;
	*)
		sed 's/^[ \t]*[0-9a-f]*:[ \t]*//' "$tmp/$k.addr" > "$tmp/$k.fn"
		awk '
			/^cbz/ && !inl { inl = 1; next }
			/^cmp/ && !inl { inl = 1; next }
			inl && /^b\.(lt|ge)/ { next }
			inl && /^b[ \t]/ { exit }
			inl { sub(/[ \t]*\/\/.*$/, ""); print }' "$tmp/$k.fn" > "$tmp/$k.loop"
		;;
	esac
	if [ ! -s "$tmp/$k.loop" ]; then
		echo "$k: loop not found" >&2
		continue
	fi
	attr=+dotprod
	note=""
	case $k in *SMMLA*) attr=+dotprod,+i8mm; note="(these cores lack i8mm: CPU2=neoverse-v1 tools/mca/run.sh $k)";; esac
	n=$(grep -c '^sdot' "$tmp/$k.loop" || true)
	# The F32 GEMM's limit is its FMLAs (also 2 per cycle on the A76).
	case $k in gemm*) n=$(grep -c '^fmla' "$tmp/$k.loop" || true);; esac
	line=$(printf '%-16s %6d' "$k" "$n")
	for model in "$MCA $CPU" "$MCA2 $CPU2"; do
		set -- $model
		if ! command -v "$1" > /dev/null; then
			line="$line $(printf '%8s %6s' n/a n/a)"
			continue
		fi
		"$1" -mtriple=aarch64 -mcpu="$2" -mattr="$attr" -iterations=200 "$tmp/$k.loop" > "$tmp/$k.$2.mca" 2>&1 || {
			echo "$k: $1 failed:"; cat "$tmp/$k.$2.mca"; continue 2; }
		cycles=$(awk '/^Total Cycles:/ { print $3 }' "$tmp/$k.$2.mca")
		per=$(echo "$cycles / 200" | bc -l)
		if [ "$n" -gt 0 ]; then
			ratio=$(echo "($n / 2) / $per * 100" | bc -l)
			line="$line $(printf '%8.2f %5.0f%%' "$per" "$ratio")"
		else
			line="$line $(printf '%8.2f %6s' "$per" -)"
		fi
	done
	echo "$line $note"
	if [ -n "${VERBOSE:-}" ]; then cat "$tmp/$k.loop"; sed -n '1,12p' "$tmp/$k.$CPU.mca"; fi
done
