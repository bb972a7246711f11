/*
 * b64.h — base64url without padding (RFC 4648 §5, as JOSE uses it), strict.
 *
 * Part of the verify library (p25verify): no database, no allocation but
 * where a name says so.  Decoding refuses everything that is not the one
 * canonical encoding: '=' padding, '+' and '/', whitespace, trailing
 * garbage, a length of 1 mod 4 and non-zero trailing bits.  Thread-safe.
 */
#ifndef P25_B64_H
#define P25_B64_H

#include <stddef.h>

/* Characters (with the terminating NUL) needed to encode binlen bytes. */
size_t p25_b64url_encoded_size(size_t binlen);

/*
 * Encodes bin into out (NUL-terminated).  Returns the length of the text,
 * or -1 (out untouched beyond out[0] = '\0') when outlen is too small.
 */
long p25_b64url_encode(char *out, size_t outlen, const unsigned char *bin,
		       size_t binlen);

/* As above into a malloc'd string the caller frees; NULL when out of memory. */
char *p25_b64url_encode_alloc(const unsigned char *bin, size_t binlen);

/*
 * Decodes exactly b64len characters of b64 (no NUL needed) into bin.
 * Returns 0 and sets *binlen, or -1 when the text is not canonical
 * base64url or decodes to more than binmax bytes.
 */
int p25_b64url_decode(unsigned char *bin, size_t binmax, const char *b64,
		      size_t b64len, size_t *binlen);

#endif
