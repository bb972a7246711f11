/*
 * b64.c — strict base64url (no padding): encoding over libsodium's codec,
 * variant 7; decoding by a table of our own (below), with the same rules.
 *
 * Why a wrapper at all: sodium_base642bin() has one sharp edge
 * (LIBRARY-NOTES §3.2).  Given a non-NULL b64_end it *stops* at the first
 * character outside the alphabet and reports success, so "YQ==" or
 * "YQ.garbage" would decode as "a".  With b64_end = NULL and ignore = NULL
 * libsodium refuses any character outside the URL-safe alphabet, any '='
 * and any non-zero trailing bits — exactly the one canonical encoding JOSE
 * and PASETO require, and exactly what our decoder refuses.  Every caller
 * in p25 goes through here so the rule lives in one place.
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

/*
 * The decoder is our own, table-driven: tokens are public, so libsodium's
 * constant-time codec (a dozen operations per character) buys nothing here
 * and cost about as much as the JSON parsing of a token (bench/ENFORCE.md,
 * verify.ratio).  It accepts exactly what sodium_base642bin() accepts with
 * b64_end = NULL, ignore = NULL and the URL-safe no-padding variant: the
 * alphabet A-Z a-z 0-9 - _, no '=', a length that is not 1 mod 4, zero
 * trailing bits, at most binmax bytes out.  tests/unit/test_verify.c
 * compares the two on every short input.
 */
static const signed char b64url_val[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7,
	['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
	['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
	['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26,
	['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33,
	['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
	['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47,
	['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52,
	['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59,
	['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};	/* value + 1; 0: not in the alphabet */

int
p25_b64url_decode(unsigned char *bin, size_t binmax, const char *b64,
		  size_t b64len, size_t *binlen)
{
	const unsigned char *in = (const unsigned char *)b64;
	size_t full = b64len / 4, rest = b64len % 4, out, i, o = 0;
	int a, b, c, d;

	*binlen = 0;
	if (rest == 1)
		return -1;
	out = full * 3 + (rest ? rest - 1 : 0);
	if (out > binmax)
		return -1;
	for (i = 0; i < full; i++, in += 4) {
		a = b64url_val[in[0]] - 1;
		b = b64url_val[in[1]] - 1;
		c = b64url_val[in[2]] - 1;
		d = b64url_val[in[3]] - 1;
		if ((a | b | c | d) < 0)
			return -1;
		bin[o++] = (unsigned char)(a << 2 | b >> 4);
		bin[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		bin[o++] = (unsigned char)((c & 3) << 6 | d);
	}
	if (rest >= 2) {
		a = b64url_val[in[0]] - 1;
		b = b64url_val[in[1]] - 1;
		if ((a | b) < 0)
			return -1;
		bin[o++] = (unsigned char)(a << 2 | b >> 4);
		if (rest == 2) {
			if (b & 15)
				return -1;	/* non-zero trailing bits */
		} else {
			c = b64url_val[in[2]] - 1;
			if (c < 0 || (c & 3))
				return -1;
			bin[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		}
	}
	*binlen = o;
	return 0;
}
