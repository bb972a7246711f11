/*
 * fuzz_ipaddr.c — libFuzzer target for core/ipaddr.c (STYLE.md §11: every
 * parser that takes outside bytes is fuzzed).  Not built by CMake; run:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude \
 *       tests/fuzz/fuzz_ipaddr.c core/ipaddr.c core/err.c -ljansson \
 *       -o /tmp/fuzz_ipaddr
 *   mkdir -p /tmp/corpus-ipaddr && /tmp/fuzz_ipaddr -max_total_time=60 /tmp/corpus-ipaddr
 *
 * The input is split at the first NUL: the first part is an address or
 * prefix (tenant input), the second a hostname (PTR text from DNS).
 * Besides memory safety it checks invariants and aborts when one breaks:
 *   - an accepted prefix formats canonically, and the canonical text parses
 *     back to the same prefix (and formats identically);
 *   - a prefix has no host bits set and contains itself;
 *   - widening a special prefix by one bit keeps it special (a prefix is
 *     refused when any address in it is special, so this must be monotone);
 *   - DNS names fit P25_QNAME_MAX and are produced only for hosts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "p25/err.h"
#include "p25/ipaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[256], host[512], canon[P25_PREFIX_STRLEN], again[P25_PREFIX_STRLEN];
	char qname[P25_QNAME_MAX];
	struct p25_prefix p, q, wider;
	struct p25_err err = { 0 };
	const uint8_t *nul = memchr(data, 0, size);
	size_t n1 = nul ? (size_t)(nul - data) : size;
	size_t n2 = nul ? size - n1 - 1 : 0;
	int n;

	if (n1 >= sizeof(in))
		n1 = sizeof(in) - 1;
	memcpy(in, data, n1);
	in[n1] = '\0';
	if (n2 >= sizeof(host))
		n2 = sizeof(host) - 1;
	if (nul)
		memcpy(host, nul + 1, n2);
	host[n2] = '\0';

	if (p25_prefix_parse(in, &p, &err) != 0) {
		CHECK(err.status == 422 && err.code[0] != '\0');
		p25_err_clear(&err);
		return 0;
	}
	CHECK(p.family == AF_INET || p.family == AF_INET6);
	CHECK(p.len >= 0 && p.len <= (p.family == AF_INET ? 32 : 128));
	p25_prefix_format(&p, canon, sizeof(canon));
	CHECK(canon[0] != '\0');
	CHECK(p25_prefix_parse(canon, &q, &err) == 0);
	CHECK(memcmp(&p, &q, sizeof(p)) == 0);
	p25_prefix_format(&q, again, sizeof(again));
	CHECK(strcmp(canon, again) == 0);
	CHECK(p25_prefix_contains(&p, &p) && p25_prefix_overlaps(&p, &p));
	for (int i = p.len; i < (p.family == AF_INET ? 32 : 128); i++)
		CHECK(!(p.addr[i / 8] & (0x80 >> (i % 8))));

	/* widening a prefix never makes it less special */
	wider = p;
	if (wider.len > 0) {
		int bit = wider.len - 1;
		wider.len--;
		wider.addr[bit / 8] &= (unsigned char)~(0x80 >> (bit % 8));
		CHECK(p25_prefix_contains(&wider, &p));
		if (p25_prefix_special(&p))
			CHECK(p25_prefix_special(&wider) != NULL);
	}

	n = p25_ptr_qname(&p, qname, sizeof(qname));
	CHECK((n > 0) == (p.len == (p.family == AF_INET ? 32 : 128)));
	CHECK(n < 0 || (size_t)n == strlen(qname));
	n = p25_dnsbl_qname(&p, host[0] ? host : "zen.example", qname, sizeof(qname));
	CHECK(n < 0 || (size_t)n == strlen(qname));
	(void)p25_ptr_is_generic(&p, host);
	return 0;
}
