include $(sort $(wildcard $(BR2_EXTERNAL_DESKGATE_PATH)/package/*/*.mk))
