/*
 * keys.c — `p25ctl keys generate|rotate|list` and `p25ctl token verify`.
 * (Filled in with the signing-key module.)
 */
#include <stdio.h>

#include "cli.h"

int
cmd_keys(int argc, char **argv)
{
	fprintf(stderr, "p25ctl keys: not built yet\n");
	return 1;
}

int
cmd_token(int argc, char **argv)
{
	fprintf(stderr, "p25ctl token: not built yet\n");
	return 1;
}
