//go:build cgo && openssl

package rsasign

/*
#cgo LDFLAGS: -lcrypto
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

static int dg_init(void) {
	// No openssl.cnf: a static binary must not load providers or engines
	// from disk, and the box's behaviour must not depend on that file.
	return OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
}

static EVP_PKEY *dg_load(const unsigned char *der, long n) {
	return d2i_PrivateKey(EVP_PKEY_RSA, NULL, &der, n);
}

static const EVP_MD *dg_md(int h) {
	switch (h) {
	case 1: return EVP_sha1();
	case 256: return EVP_sha256();
	case 384: return EVP_sha384();
	case 512: return EVP_sha512();
	}
	return NULL;
}

// dg_sign signs a digest: PKCS #1 v1.5 when saltlen is -100, else PSS
// with that salt length (OpenSSL's RSA_PSS_SALTLEN_* or a byte count).
static int dg_sign(EVP_PKEY *k, int h, int saltlen, const unsigned char *dgst, size_t dlen,
	unsigned char *sig, size_t *siglen) {
	const EVP_MD *md = dg_md(h);
	EVP_PKEY_CTX *ctx;
	int ok = 0;
	if (md == NULL) return 0;
	ctx = EVP_PKEY_CTX_new(k, NULL);
	if (ctx == NULL) return 0;
	if (EVP_PKEY_sign_init(ctx) <= 0) goto done;
	if (saltlen == -100) {
		if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0) goto done;
	} else {
		if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0) goto done;
		if (EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, saltlen) <= 0) goto done;
	}
	if (EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0) goto done;
	if (EVP_PKEY_sign(ctx, sig, siglen, dgst, dlen) <= 0) goto done;
	ok = 1;
done:
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static const char *dg_version(void) { return OpenSSL_version(OPENSSL_VERSION); }
*/
import "C"

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"
)

var initOnce = sync.OnceValue(func() error {
	if C.dg_init() != 1 {
		return errors.New("rsasign: OpenSSL initialisation failed")
	}
	return nil
})

// Backend names what signs with RSA keys in this build.
func Backend() string { return "openssl (" + C.GoString(C.dg_version()) + ")" }

// Wrap returns, for an *rsa.PrivateKey, a crypto.Signer that signs through
// OpenSSL; other keys (ECDSA, Ed25519) come back unchanged, as crypto/tls
// already signs those cheaply.
func Wrap(key crypto.PrivateKey) (crypto.PrivateKey, error) {
	k, ok := key.(*rsa.PrivateKey)
	if !ok {
		return key, nil
	}
	if err := initOnce(); err != nil {
		return nil, err
	}
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("rsasign: wrap RSA key: %w", err)
	}
	der := x509.MarshalPKCS1PrivateKey(k)
	p := C.dg_load((*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)))
	clear(der)
	if p == nil {
		return nil, errors.New("rsasign: wrap RSA key: OpenSSL did not accept the key")
	}
	s := &signer{key: k, pkey: p}
	runtime.AddCleanup(s, func(p *C.EVP_PKEY) { C.EVP_PKEY_free(p) }, p)
	return s, nil
}

type signer struct {
	key  *rsa.PrivateKey // the public half, and Go's path for what OpenSSL is not asked to do
	pkey *C.EVP_PKEY
}

func (s *signer) Public() crypto.PublicKey { return &s.key.PublicKey }

// Sign signs digest as crypto/rsa would: PSS for *rsa.PSSOptions, else
// PKCS #1 v1.5. Hashes other than SHA-1 and SHA-2 go to crypto/rsa.
func (s *signer) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	h := opts.HashFunc()
	var hid C.int
	switch h {
	case crypto.SHA1:
		hid = 1
	case crypto.SHA256:
		hid = 256
	case crypto.SHA384:
		hid = 384
	case crypto.SHA512:
		hid = 512
	default:
		return s.key.Sign(rand, digest, opts)
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("rsasign: sign: digest is %d bytes, %v wants %d", len(digest), h, h.Size())
	}
	salt := C.int(-100) // PKCS #1 v1.5
	if o, ok := opts.(*rsa.PSSOptions); ok {
		switch {
		case o.SaltLength == rsa.PSSSaltLengthEqualsHash:
			salt = -1 // RSA_PSS_SALTLEN_DIGEST
		case o.SaltLength == rsa.PSSSaltLengthAuto:
			salt = -3 // RSA_PSS_SALTLEN_MAX: crypto/rsa's Auto signs with the longest salt
		case o.SaltLength > 0:
			salt = C.int(o.SaltLength)
		default:
			return nil, fmt.Errorf("rsasign: sign: PSS salt length %d", o.SaltLength)
		}
	}
	sig := make([]byte, s.key.Size())
	n := C.size_t(len(sig))
	if C.dg_sign(s.pkey, hid, salt, (*C.uchar)(unsafe.Pointer(&digest[0])), C.size_t(len(digest)),
		(*C.uchar)(unsafe.Pointer(&sig[0])), &n) != 1 {
		return nil, errors.New("rsasign: sign: OpenSSL refused")
	}
	runtime.KeepAlive(s)
	return sig[:n], nil
}
