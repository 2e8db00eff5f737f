#!/bin/sh
# run.sh HOST [go test flags...] runs palid's hardware tests on a device.
#
# It cross-builds the hardware test binary (./hwtests, build tag hwtest) and
# the kernel tests of ./neon (every runnable path against its Go twin) for
# the device's architecture, copies them to HOST over ssh, runs them there
# with -test.json and the kernel benchmarks, and brings the reports back to
# hwtests/reports/HOST-DATE/: hwtests.json and neon.json (go test -json
# events, read them with `go tool test2json` or jq), kernels.json (the
# kernel table), summary.txt, and the device's uname and cpuinfo.
#
# HOST is anything ssh accepts (root@palid-rpi5.local, an ssh_config alias).
# Environment:
#   GOARCH        the device's architecture (default arm64)
#   REMOTE_DIR    where the binaries go on the device (default /tmp/palid-hwtests)
#   BENCHTIME     -test.benchtime of the benchmarks (default 1s; "" skips them)
#   SSH_OPTS      more options for ssh and scp (-F FILE, -i KEY, -o Port=2222)
#   PALID_*       the tests' own settings (PALID_CAMERA, PALID_GPIO_OUT,
#                 PALID_GPIO_IN, PALID_MODEL, PALID_NPU_*) are passed on
# Extra arguments go to the hwtests binary, e.g. -test.run 'GPIO'.
set -eu

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
	sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
host="$1"
shift

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "${here}")"
arch="${GOARCH:-arm64}"
remote="${REMOTE_DIR:-/tmp/palid-hwtests}"
benchtime="${BENCHTIME-1s}"
out="${here}/reports/$(printf %s "${host}" | tr -c 'A-Za-z0-9._-' _)-$(date -u +%Y%m%dT%H%M%SZ)"
build="$(mktemp -d)"
trap 'rm -rf "${build}"' EXIT
mkdir -p "${out}"

echo "run.sh: building the tests for linux/${arch}" >&2
(
	cd "${repo}"
	GOOS=linux GOARCH="${arch}" CGO_ENABLED=0 go test -c -tags hwtest -o "${build}/hwtests.test" ./hwtests
	GOOS=linux GOARCH="${arch}" CGO_ENABLED=0 go test -c -o "${build}/neon.test" ./neon
	GOOS=linux GOARCH="${arch}" CGO_ENABLED=0 go build -o "${build}/test2json" cmd/test2json
)

ssh_opts="-o BatchMode=yes -o ConnectTimeout=15 ${SSH_OPTS:-}"
# shellcheck disable=SC2086,SC2029 # ssh_opts holds several options; "$@" is for the remote shell
rsh() { ssh ${ssh_opts} "${host}" "$@"; }

echo "run.sh: copying to ${host}:${remote}" >&2
rsh "mkdir -p '${remote}/reports'"
for f in hwtests.test neon.test test2json; do
	# scp where the device has an SFTP or scp server, else a plain ssh pipe.
	# shellcheck disable=SC2086
	if ! scp -q ${ssh_opts} "${build}/${f}" "${host}:${remote}/${f}" 2>/dev/null; then
		rsh "cat > '${remote}/${f}'" < "${build}/${f}"
	fi
done
rsh "chmod +x '${remote}/hwtests.test' '${remote}/neon.test' '${remote}/test2json'"

# The tests' settings, quoted for the remote shell.
envs="PALID_HWTEST_REPORTS='${remote}/reports'"
for v in $(env | sed -n 's/^\(PALID_[A-Z0-9_]*\)=.*/\1/p'); do
	eval "val=\${${v}}"
	# shellcheck disable=SC2154 # val is set by eval
	envs="${envs} ${v}='$(printf %s "${val}" | sed "s/'/'\\\\''/g")'"
done
args=""
for a in "$@"; do
	args="${args} '$(printf %s "${a}" | sed "s/'/'\\\\''/g")'"
done
bench=""
if [ -n "${benchtime}" ]; then
	bench="-test.bench . -test.benchtime ${benchtime}"
fi

status=0
echo "run.sh: hardware tests on ${host}" >&2
rsh "cd '${remote}' && uname -a > reports/uname.txt && cat /proc/cpuinfo > reports/cpuinfo.txt;
	${envs} ./test2json -t -p github.com/palid/palid/hwtests ./hwtests.test -test.v=test2json ${bench} ${args}" \
	> "${out}/hwtests.json" || status=1
echo "run.sh: kernel tests (every path against its Go twin) on ${host}" >&2
rsh "cd '${remote}' && ./test2json -t -p github.com/palid/palid/neon ./neon.test -test.v=test2json" \
	> "${out}/neon.json" || status=1
for f in kernels.json uname.txt cpuinfo.txt; do
	rsh "cat '${remote}/reports/${f}'" > "${out}/${f}" 2>/dev/null || rm -f "${out}/${f}"
done

# A summary: each test's result, with the reason of every skip.
for j in "${out}/hwtests.json" "${out}/neon.json"; do
	python3 - "${j}" <<'EOF' || true
import json, sys
out, res = {}, []
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    t = e.get("Test")
    if not t or "/" in t:
        continue
    if e.get("Action") == "output":
        out.setdefault(t, []).append(e["Output"])
    elif e.get("Action") in ("pass", "fail", "skip"):
        why = ""
        if e["Action"] != "pass":
            lines = [l.strip() for l in out.get(t, []) if l.strip() and not l.startswith(("=== ", "--- "))]
            why = lines[-1] if lines else ""
        res.append("%-4s %-40s %s" % (e["Action"].upper(), t, why))
print("\n".join(res))
EOF
done | tee "${out}/summary.txt"
echo "run.sh: reports in ${out}" >&2
exit "${status}"
