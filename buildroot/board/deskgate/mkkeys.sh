#!/bin/sh
# Creates a development update CA and a bundle signing key in DIR (once):
#   ca.cert.pem (the keyring the box trusts), ca.key.pem,
#   signing.cert.pem, signing.key.pem (for `rauc bundle`).
# For production, keep the CA key offline and point DESKGATE_RAUC_KEYRING,
# DESKGATE_SIGN_CERT and DESKGATE_SIGN_KEY at your own files.
set -eu
DIR=$1
[ -s "$DIR/signing.key.pem" ] && exit 0
mkdir -p "$DIR"
chmod 700 "$DIR"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
	-subj "/O=deskgate development/CN=deskgate update CA" \
	-addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign \
	-keyout "$DIR/ca.key.pem" -out "$DIR/ca.cert.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-subj "/O=deskgate development/CN=deskgate bundle signing" \
	-keyout "$DIR/signing.key.pem" -out "$DIR/signing.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\n' >"$DIR/signing.ext"
openssl x509 -req -in "$DIR/signing.csr" -CA "$DIR/ca.cert.pem" -CAkey "$DIR/ca.key.pem" \
	-CAcreateserial -days 3650 -extfile "$DIR/signing.ext" -out "$DIR/signing.cert.pem" 2>/dev/null
rm -f "$DIR/signing.csr" "$DIR/signing.ext"
chmod 644 "$DIR/ca.cert.pem" "$DIR/signing.cert.pem"
echo "mkkeys: development update keys in $DIR (keep signing.key.pem and ca.key.pem private)"
