/*
 * context.c — the worker's shared, read-only context (see worker.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "p25/err.h"
#include "worker.h"

struct worker_ctx wctx;

void
worker_ctx_init(void)
{
	struct p25_err err = { 0 };

	p25_config_load_or_exit(&wctx.cfg);
	curl_global_init(CURL_GLOBAL_DEFAULT);	/* before any thread */
	if (p25_policy_load(wctx.cfg.policy_file, &wctx.policy, &err) != 0 ||
	    p25_issuer_init(&wctx.issuer, &wctx.cfg, &err) != 0) {
		if (strcmp(err.code, "invalid_policy") == 0)
			fprintf(stderr, "p25-worker: configuration error: P25_POLICY_FILE %s: %s%s%s\n",
				wctx.cfg.policy_file, err.detail, err.field[0] ? " — at " : "", err.field);
		else
			fprintf(stderr, "p25-worker: configuration error: %s\n", err.detail);
		exit(P25_EX_CONFIG);
	}
	wctx.issuer.monitor_interval = wctx.policy.monitor_interval_seconds;
}

void
worker_ctx_free(void)
{
	p25_issuer_wipe(&wctx.issuer);
	p25_config_free(&wctx.cfg);
}
