#!/bin/sh
# check.sh BUILDROOT runs Buildroot's utils/check-package, from the Buildroot
# checkout at BUILDROOT, on every file of this br2-external tree. It needs
# python3 with the magic and flake8 modules (Debian: python3-magic,
# python3-flake8) and shellcheck.
set -eu

br="${1:?usage: buildroot/check.sh PATH-TO-BUILDROOT-CHECKOUT}"
if [ ! -x "${br}/utils/check-package" ]; then
	echo "check.sh: ${br}/utils/check-package not found: give the path of a Buildroot checkout" >&2
	exit 2
fi
br="$(cd "${br}" && pwd)"

# The first Python that has the magic module ($PYTHON, python3, the system's).
py=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
	if "${p}" -c 'import magic, flake8' 2>/dev/null; then
		py="${p}"
		break
	fi
done
if [ -z "${py}" ]; then
	echo "check.sh: no python3 with the magic and flake8 modules (apt-get install python3-magic python3-flake8)" >&2
	exit 2
fi

cd "$(dirname "$0")"
# shellcheck disable=SC2046 # file names hold no spaces
"${py}" "${br}/utils/check-package" -b $(find . -type f | sort)
