/* cli.h — what p25ctl's command files share. */
#ifndef P25_CLI_H
#define P25_CLI_H

#include "p25/config.h"

struct p25_db;
struct p25_err;

extern struct p25_config cli_cfg;

int cli_fail(struct p25_err *err);
struct p25_db *cli_connect(const char *url);
const char *cli_opt(int argc, char **argv, const char *name);

int cmd_keys(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_audit(int argc, char **argv);

#endif
