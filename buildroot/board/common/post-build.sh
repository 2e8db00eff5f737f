#!/bin/sh
# Post-build script of the palid images, run by Buildroot after the packages
# are installed and the rootfs overlay is copied, with TARGET_DIR as $1
# (further arguments belong to the board's own scripts and are ignored).
#
# - names the device after the image's hostname, when the configuration
#   still carries the generic device_id, so the MQTT topics are palid/<host>;
# - makes the configuration and the model read-only, whatever the overlay's
#   file modes were;
# - checks that the image holds what palid.service needs.
set -eu

target="${1:?usage: post-build.sh TARGET_DIR}"
conf="${target}/etc/palid/palid.yaml"
models="${target}/usr/share/palid/models"

fail() {
	echo "palid post-build: $*" >&2
	exit 1
}

[ -x "${target}/usr/bin/palid" ] || fail "no /usr/bin/palid in the target (BR2_PACKAGE_PALID)"
[ -f "${conf}" ] || fail "no /etc/palid/palid.yaml in the target"
[ -f "${target}/usr/lib/systemd/system/palid.service" ] ||
	fail "no palid.service: palid needs BR2_INIT_SYSTEMD"

if [ -f "${target}/etc/hostname" ] && grep -q '^device_id: palid$' "${conf}"; then
	host="$(tr -cd 'A-Za-z0-9_-' < "${target}/etc/hostname")"
	if [ -n "${host}" ]; then
		chmod u+w "${conf}"
		sed -i "s/^device_id: palid\$/device_id: ${host}/" "${conf}"
	fi
fi
chmod 0444 "${conf}"

if [ -d "${models}" ]; then
	find "${models}" -type f -exec chmod 0444 {} +
fi
if grep -q '^model: /usr/share/palid/models/default' "${conf}" &&
	[ ! -f "${models}/default/model.gguf" ]; then
	fail "palid.yaml names /usr/share/palid/models/default, which holds no model.gguf (BR2_PACKAGE_PALID_MODEL)"
fi
