/*
 * main.c — p25-api: configuration, the pool, the HTTP daemon, signals.
 *
 * Signals are blocked in every thread and taken by the main thread with
 * sigwait(); SIGTERM/SIGINT drain: stop accepting, let in-flight requests
 * finish for up to 10 s, then stop.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sodium.h>

#include "api.h"
#include "p25/log.h"


static void
usage(void)
{
	fprintf(stderr,
	    "usage: p25-api [--routes | --help]\n"
	    "  Serves the p25 API on P25_LISTEN.  Configuration comes from P25_*\n"
	    "  environment variables; see `p25ctl --help` and `p25ctl config-doc`.\n"
	    "  --routes   print the route table (METHOD PATH) and exit\n");
}

/* Room for thousands of held long-polls. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct p25_err err = { 0 };
	sigset_t set;
	int sig;
	size_t i;

	if (argc > 1 && strcmp(argv[1], "--routes") == 0) {
		for (i = 0; i < api_nroutes; i++)
			printf("%s %s\n", api_routes[i].method, api_routes[i].pattern);
		return 0;
	}
	if (argc > 1) {
		usage();
		return strcmp(argv[1], "--help") == 0 ? 0 : 64;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "p25-api: libsodium failed to initialise\n");
		return 1;
	}
	p25_config_load_or_exit(&api.cfg);
	p25_log_init("p25-api", api.cfg.log_level);
	raise_nofile();

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	api.auth = p25_auth_new(&api.cfg, &err);
	if (!api.auth) {
		fprintf(stderr, "p25-api: configuration error: %s\n", err.detail);
		p25_config_free(&api.cfg);
		return P25_EX_CONFIG;
	}
	if (p25_policy_load(api.cfg.policy_file, &api.policy, &err) != 0) {
		fprintf(stderr, "p25-api: configuration error: P25_POLICY_FILE %s: %s%s%s\n",
			api.cfg.policy_file, err.detail, err.field[0] ? " — at " : "", err.field);
		return P25_EX_CONFIG;
	}
	api.pool = p25_pool_new(api.cfg.database_url, (int)api.cfg.db_pool_size,
				(int)api.cfg.db_queue_max, "p25-api");
	if (!api.pool) {
		p25_error("start", "cannot start the database pool");
		return 1;
	}
	if (feed_start() != 0) {
		p25_error("start", "cannot start the feed listener");
		return 1;
	}
	if (http_start() != 0)
		return 1;
	p25_info("start", "listening on %s", api.cfg.listen);

	do {
		if (sigwait(&set, &sig) != 0)
			sig = SIGTERM;
	} while (sig == SIGHUP);
	p25_info("stop", "signal %d: draining", sig);
	http_drain_and_stop(10);
	p25_pool_free(api.pool);
	p25_auth_free(api.auth);
	p25_config_free(&api.cfg);
	p25_info("stop", "stopped");
	return 0;
}
