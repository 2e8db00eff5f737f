################################################################################
#
# palid-model
#
################################################################################

PALID_MODEL_VERSION = local
PALID_MODEL_SITE = $(call qstrip,$(BR2_PACKAGE_PALID_MODEL_DIR))
PALID_MODEL_SITE_METHOD = local
PALID_MODEL_DEPENDENCIES = palid

PALID_MODEL_TARGET = $(TARGET_DIR)/usr/share/palid/models/default

# The weights are installed read-only; palid maps them, never writes.
define PALID_MODEL_INSTALL_TARGET_CMDS
	for f in model.gguf mmproj.gguf; do \
		if [ ! -f $(@D)/$$f ]; then \
			echo "palid-model: no $$f in $(PALID_MODEL_SITE) (see docs/buildroot.md)" >&2; \
			exit 1; \
		fi; \
		$(INSTALL) -D -m 0444 $(@D)/$$f $(PALID_MODEL_TARGET)/$$f || exit 1; \
	done
	if [ -f $(@D)/vision.tflite ]; then \
		$(INSTALL) -D -m 0444 $(@D)/vision.tflite \
			$(PALID_MODEL_TARGET)/vision.tflite; \
	fi
endef

$(eval $(generic-package))
