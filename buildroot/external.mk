include $(sort $(wildcard $(BR2_EXTERNAL_PALID_PATH)/package/*/*.mk))
