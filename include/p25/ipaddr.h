/*
 * ipaddr.h — IPv4/IPv6 addresses and prefixes as p25 accepts them
 * (DESIGN.md "Input rules", "Vetting").
 *
 * Parsing is strict (one spelling per value, nothing a human could read
 * two ways), formatting is canonical (inet_ntop, lowercase, always with a
 * length), and p25_prefix_special() says whether a prefix may ever send
 * mail on the internet.  DNS name builders for DNSBL (RFC 5782) and PTR
 * lookups, and the generic-rDNS heuristic, live here too because they are
 * all "what does this address look like" questions.
 *
 * Pure functions on caller memory: thread-safe, no allocation.
 */
#ifndef P25_IPADDR_H
#define P25_IPADDR_H

#include <stdbool.h>
#include <stddef.h>

struct p25_err;

#define P25_PREFIX_STRLEN 64
#define P25_QNAME_MAX 256	/* a DNS name in text, with the NUL */

struct p25_prefix {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16];	/* network byte order; v4 in the first 4 bytes */
	int len;		/* 0..32 or 0..128 */
};

/*
 * Parses "81.2.69.5", "81.2.69.0/26", "2a02:ff0:1::/48", "2A02:FF0::1".
 * Strict: no leading zeros in IPv4 octets or in the length, no spaces, no
 * zone ids, length in range; a bare address is a host (/32, /128).  With a
 * length, host bits must be zero (code "host_bits_set", with a hint naming
 * the network: "did you mean 81.2.69.0/24?").  IPv4-mapped IPv6
 * (::ffff:a.b.c.d) is refused with code "mapped_address" (use the IPv4
 * form).  Anything else unparsable: code "invalid_address".  All 422.
 * Returns 0, or -1 with err filled (err->field is left empty: the caller
 * knows which entry it was).  The input is echoed in err->detail only
 * when it is short printable ASCII.
 */
int p25_prefix_parse(const char *s, struct p25_prefix *out, struct p25_err *err);

/* Canonical text "81.2.69.5/32", "2a02:ff0:1::/48"; len >= P25_PREFIX_STRLEN. */
void p25_prefix_format(const struct p25_prefix *p, char *buf, size_t len);

/*
 * NULL when every address of p is public unicast that may send mail;
 * otherwise a stable reason for the first special-purpose range p overlaps
 * at all (a /7 holding 10/8 is refused).  Reasons:
 *   unspecified, this_network, loopback, private, shared, link_local,
 *   multicast, broadcast, reserved, documentation, benchmarking, anycast,
 *   6to4, unique_local, ipv4_mapped, nat64, teredo.
 * The ranges and why each is refused are listed in ipaddr.c.  For IPv6
 * only 2000::/3 (global unicast) can be public.
 */
const char *p25_prefix_special(const struct p25_prefix *p);

/* Same family and every address of inner is in outer. */
bool p25_prefix_contains(const struct p25_prefix *outer,
			 const struct p25_prefix *inner);
/* Same family and at least one address in common. */
bool p25_prefix_overlaps(const struct p25_prefix *a, const struct p25_prefix *b);

/*
 * RFC 5782 query name for one address (len 32 or 128) under zone:
 * "5.69.2.81.zen.example", or the 32 reversed nibbles for IPv6.  Returns
 * the length written, or -1 when host is not a single address, zone is
 * empty or buf is too small (buf is then "").
 */
int p25_dnsbl_qname(const struct p25_prefix *host, const char *zone,
		    char *buf, size_t len);
/* PTR name: "5.69.2.81.in-addr.arpa" / nibbles + "ip6.arpa"; as above. */
int p25_ptr_qname(const struct p25_prefix *host, char *buf, size_t len);

/*
 * True when hostname (untrusted DNS text) embeds the address, which is
 * what an ISP's generic reverse DNS looks like.  IPv4: the four octets in
 * order or reversed, separated by '-', '.' or '_' (81-2-69-5.example.net,
 * 5.69.2.81.dyn.example, ip-081-002-069-005), twelve zero-padded digits
 * (081002069005), eight hex digits (51024505) or the 32-bit decimal value.
 * IPv6: the four hex groups of the interface identifier (last 64 bits)
 * separated by '-', '.' or '_', the 16 or 32 hex digits run together, or
 * the compressed text with '-' for ':' (2a02-ff0-1--5).  Numbers must stand
 * alone: "181-2-69-50" does not match 81.2.69.5.  Case-insensitive.
 */
bool p25_ptr_is_generic(const struct p25_prefix *host, const char *hostname);

#endif
