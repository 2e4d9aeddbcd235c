// Package vmtest boots the install image (scripts/image/build.sh) under
// qemu and checks booting, updates, rollback, a refused bundle and a power
// cut during an install. The image and the bundles are built once per
// input hash (under $TMPDIR/deskgate-imagetest) and shared by the tests.
// Needs root and the Debian packages in scripts/install-test-deps.sh;
// under CI=true a missing tool fails the tests instead of skipping them.
package vmtest
