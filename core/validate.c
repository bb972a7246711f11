/*
 * validate.c — syntax checks (see validate.h).  Deliberately strict: what
 * passes here is stored and shown to people, so anything odd is refused
 * with a clear error instead of being cleaned up silently.
 */
#include <ctype.h>
#include <string.h>

#include "p25/validate.h"

bool
p25_domain_ok(const char *s)
{
	size_t len = strlen(s), label = 0, labels = 0, i;
	bool tld_alpha = false;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)s[i] : '.';
		if (c == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			labels++;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return false;
		if (label == 0) {
			if (c == '-')
				return false;
			tld_alpha = false;
		}
		if (isalpha(c))
			tld_alpha = true;
		label++;
	}
	return labels >= 2 && tld_alpha;
}

void
p25_domain_normalize(char *s)
{
	size_t len = strlen(s), i;

	for (i = 0; i < len; i++)
		s[i] = (char)tolower((unsigned char)s[i]);
	if (len > 0 && s[len - 1] == '.')
		s[len - 1] = '\0';
}

bool
p25_email_ok(const char *s)
{
	const char *at = strrchr(s, '@');
	const char *p;
	size_t local;

	if (!at || strlen(s) > 254)
		return false;
	local = (size_t)(at - s);
	if (local == 0 || local > 64 || s[0] == '.' || at[-1] == '.')
		return false;
	for (p = s; p < at; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '.' && p[1] == '.')
			return false;
		if (!isalnum(c) && !strchr(".!#$%&'*+/=?^_`{|}~-", c))
			return false;
	}
	return p25_domain_ok(at + 1) && at[1 + strlen(at + 1) - 1] != '.';
}

bool
p25_uuid_ok(const char *s)
{
	size_t i;

	if (strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static bool
digits(const char *s, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static int
num(const char *s, int n)
{
	int v = 0;

	while (n-- > 0)
		v = v * 10 + (*s++ - '0');
	return v;
}

bool
p25_timestamp_ok(const char *s)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p;
	int y, mo, d;

	/* YYYY-MM-DDTHH:MM:SS */
	if (strlen(s) < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
	    s[7] != '-' || !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') ||
	    !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) ||
	    s[16] != ':' || !digits(s + 17, 2))
		return false;
	y = num(s, 4);
	mo = num(s + 5, 2);
	d = num(s + 8, 2);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) ||
	    num(s + 11, 2) > 23 || num(s + 14, 2) > 59 || num(s + 17, 2) > 60)
		return false;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return true;
	return (*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' &&
	       digits(p + 4, 2) && p[6] == '\0';
}

bool
p25_text_ok(const char *s, size_t max_bytes)
{
	size_t i, len = strlen(s);

	if (len > max_bytes)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}
