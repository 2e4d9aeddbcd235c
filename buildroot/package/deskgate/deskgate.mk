################################################################################
#
# deskgate
#
################################################################################

# Built from the checkout this BR2_EXTERNAL tree lives in (../..), so the
# image always carries the daemon of the same commit as its board files.
DESKGATE_VERSION = local
DESKGATE_SITE = $(BR2_EXTERNAL_DESKGATE_PATH)/..
DESKGATE_SITE_METHOD = local
DESKGATE_LICENSE = Apache-2.0
DESKGATE_LICENSE_FILES = LICENSE
DESKGATE_GOMOD = github.com/deskgate/deskgate

DESKGATE_BUILD_TARGETS = cmd/deskgated cmd/deskgate
DESKGATE_INSTALL_BINS = deskgated deskgate

# Static, with cgo only for the target's libcrypto: the EAP server's RSA
# signatures go through OpenSSL (internal/rsasign, the openssl tag), as
# scripts/gobuild.sh builds it on the host. Needs libcrypto.a, so the
# configuration must build static libraries too (BR2_SHARED_STATIC_LIBS).
DESKGATE_DEPENDENCIES = openssl
DESKGATE_GO_ENV = CGO_ENABLED=1
DESKGATE_LDFLAGS = -s -w -linkmode external -extldflags -static \
	-X github.com/deskgate/deskgate/appliance.Version=$(call qstrip,$(BR2_PACKAGE_DESKGATE_VERSION_STRING))
# timetzdata: location time zones work without a zoneinfo tree on the box.
# netgo, osusergo: no libc resolver or user lookups in the static binary.
DESKGATE_TAGS = netgo osusergo timetzdata openssl

define DESKGATE_INSTALL_VERSION
	mkdir -p $(TARGET_DIR)/etc/deskgate
	echo "$(call qstrip,$(BR2_PACKAGE_DESKGATE_VERSION_STRING))" > $(TARGET_DIR)/etc/deskgate/version
endef
DESKGATE_POST_INSTALL_TARGET_HOOKS += DESKGATE_INSTALL_VERSION

$(eval $(golang-package))
