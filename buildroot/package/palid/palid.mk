################################################################################
#
# palid
#
################################################################################

# palid is built from a checkout (by default the one holding this tree);
# the binary reports the checkout's git description as its version.
PALID_SITE = $(call qstrip,$(BR2_PACKAGE_PALID_SRCDIR))
PALID_SITE_METHOD = local
PALID_GIT_VERSION := $(shell git -C $(PALID_SITE) describe --tags --always --dirty 2>/dev/null)
PALID_GIT_COMMIT := $(shell git -C $(PALID_SITE) rev-parse HEAD 2>/dev/null)
PALID_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /bin --exclude /dist --exclude /buildroot --exclude /models
PALID_GOMOD = github.com/palid/palid
PALID_BUILD_TARGETS = cmd/palid

# A local source is not vendored by the download step as a git or tarball
# one is: vendor the modules of go.sum before the (offline) build.
define PALID_VENDOR_MODULES
	if [ ! -d $(@D)/vendor ]; then \
		cd $(@D) && $(HOST_GO_HOST_ENV) \
			GOFLAGS=-mod=mod \
			GOPROXY="$(call qstrip,$(BR2_PACKAGE_PALID_GOPROXY))" \
			$(GO_BIN) mod vendor -modcacherw; \
	fi
endef
PALID_PRE_CONFIGURE_HOOKS += PALID_VENDOR_MODULES

# One Go binary without cgo: the TFLite library is opened at run
# time through purego, which needs only the system's dynamic loader.
PALID_GO_ENV = CGO_ENABLED=0
PALID_LDFLAGS = \
	-s -w -buildid= \
	-X main.version=$(or $(PALID_GIT_VERSION),local) \
	-X main.commit=$(or $(PALID_GIT_COMMIT),unknown)

PALID_USERS = - - gpio -1 - - - - -

define PALID_INSTALL_CONFIG
	$(INSTALL) -D -m 0444 $(call qstrip,$(BR2_PACKAGE_PALID_CONFIG_FILE)) \
		$(TARGET_DIR)/etc/palid/palid.yaml
endef
PALID_POST_INSTALL_TARGET_HOOKS += PALID_INSTALL_CONFIG

define PALID_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/systemd/palid.service \
		$(TARGET_DIR)/usr/lib/systemd/system/palid.service
	$(INSTALL) -D -m 0644 $(@D)/systemd/palid.socket \
		$(TARGET_DIR)/usr/lib/systemd/system/palid.socket
	$(INSTALL) -D -m 0644 $(PALID_PKGDIR)/50-palid.preset \
		$(TARGET_DIR)/usr/lib/systemd/system-preset/50-palid.preset
endef

# Cameras are UVC devices, GPIO is read through the character device.
define PALID_LINUX_CONFIG_FIXUPS
	$(call KCONFIG_ENABLE_OPT,CONFIG_GPIOLIB)
	$(call KCONFIG_ENABLE_OPT,CONFIG_GPIO_CDEV)
	$(call KCONFIG_ENABLE_OPT,CONFIG_MEDIA_SUPPORT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_MEDIA_USB_SUPPORT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_MEDIA_CAMERA_SUPPORT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_VIDEO_DEV)
	$(call KCONFIG_ENABLE_OPT,CONFIG_USB_VIDEO_CLASS)
endef

$(eval $(golang-package))
