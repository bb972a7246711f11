/*
 * b64.c — strict base64url (no padding) over libsodium's codec, variant 7.
 *
 * Why a wrapper at all: sodium_base642bin() has one sharp edge
 * (LIBRARY-NOTES §3.2).  Given a non-NULL b64_end it *stops* at the first
 * character outside the alphabet and reports success, so "YQ==" or
 * "YQ.garbage" would decode as "a".  We always pass b64_end = NULL and
 * ignore = NULL, which makes libsodium refuse any character outside the
 * URL-safe alphabet, any '=' and any non-zero trailing bits — exactly the
 * one canonical encoding JOSE and PASETO require.  Every caller in p25 goes
 * through here so the rule lives in one place.
 *
 * Neither function needs sodium_init() (the codecs are pure) and both are
 * thread-safe.  This file is part of p25verify: it must not grow a
 * dependency on the database or on anything in p25core.
 */
#include <stdlib.h>
#include <sodium.h>

#include "p25/b64.h"

#define B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

size_t
p25_b64url_encoded_size(size_t binlen)
{
	return sodium_base64_ENCODED_LEN(binlen, B64_VARIANT);
}

long
p25_b64url_encode(char *out, size_t outlen, const unsigned char *bin,
		  size_t binlen)
{
	size_t need = p25_b64url_encoded_size(binlen);

	if (outlen > 0)
		out[0] = '\0';
	if (outlen < need)
		return -1;
	sodium_bin2base64(out, outlen, bin, binlen, B64_VARIANT);
	return (long)(need - 1);
}

char *
p25_b64url_encode_alloc(const unsigned char *bin, size_t binlen)
{
	size_t need = p25_b64url_encoded_size(binlen);
	char *out = malloc(need);

	if (!out)
		return NULL;
	sodium_bin2base64(out, need, bin, binlen, B64_VARIANT);
	return out;
}

int
p25_b64url_decode(unsigned char *bin, size_t binmax, const char *b64,
		  size_t b64len, size_t *binlen)
{
	size_t n = 0;

	*binlen = 0;
	/* b64_end = NULL: trailing or foreign characters fail the call */
	if (sodium_base642bin(bin, binmax, b64, b64len, NULL, &n, NULL,
			      B64_VARIANT) != 0)
		return -1;
	*binlen = n;
	return 0;
}
