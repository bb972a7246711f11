/*
 * metrics.c — Prometheus text for /metrics: requests by route and status,
 * latency histograms by route, groups of batched routes, pool use, auth
 * cache, jobs by state.
 *
 * Counters are relaxed atomics in fixed arrays indexed by route and by a
 * small status table, so observing a request costs a few increments and no
 * lock.  Rendering reads them without stopping the world: a scrape may mix
 * values from a few microseconds apart, as Prometheus allows.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "p25/log.h"

#define MAX_ROUTES 128
static const int statuses[] = { 200, 201, 202, 204, 304, 400, 401, 403, 404,
				405, 409, 412, 413, 415, 422, 428, 429, 500, 503, 0 };
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))
static const double buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				  0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* index MAX_ROUTES collects requests that matched no route */
static atomic_ulong req_count[MAX_ROUTES + 1][NSTATUS];
static atomic_ulong lat_bucket[MAX_ROUTES + 1][NBUCKETS + 1];
static atomic_ullong lat_sum_us[MAX_ROUTES + 1];
/* ROUTE_GROUP routes: groups handled, and the requests they carried */
static atomic_ulong grp_count[MAX_ROUTES], grp_reqs[MAX_ROUTES];

void
metrics_observe(int route_idx, int status, uint64_t ns)
{
	size_t ri = route_idx < 0 || route_idx >= MAX_ROUTES ? MAX_ROUTES : (size_t)route_idx;
	size_t si, bi;
	double s = (double)ns / 1e9;

	for (si = 0; si < NSTATUS - 1 && statuses[si] != status; si++)
		;
	atomic_fetch_add_explicit(&req_count[ri][si], 1, memory_order_relaxed);
	for (bi = 0; bi < NBUCKETS && s > buckets[bi]; bi++)
		;
	atomic_fetch_add_explicit(&lat_bucket[ri][bi], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&lat_sum_us[ri], ns / 1000, memory_order_relaxed);
}

void
metrics_group(int route_idx, int n)
{
	if (route_idx < 0 || route_idx >= MAX_ROUTES)
		return;
	atomic_fetch_add_explicit(&grp_count[route_idx], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&grp_reqs[route_idx], (unsigned long)n, memory_order_relaxed);
}

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void __attribute__((format(printf, 2, 3)))
bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *np = realloc(b->p, cap);
		if (!np || cap > (16u << 20)) {
			free(np == b->p ? NULL : np);
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

static const char *
route_label(size_t ri)
{
	return ri < api_nroutes ? api_routes[ri].pattern : "unmatched";
}

static const char *
route_method(size_t ri)
{
	return ri < api_nroutes ? api_routes[ri].method : "-";
}

/* What the database knows: requests, decisions, suspensions, the feed. */
static void
metrics_db(struct buf *b, struct p25_db *db)
{
	P25_STMT(states, 0, "SELECT status, count(*) FROM requests GROUP BY status ORDER BY 1");
	P25_STMT(ttd, 0,
	    "SELECT count(*) FILTER (WHERE d <= 1), count(*) FILTER (WHERE d <= 2),"
	    " count(*) FILTER (WHERE d <= 5), count(*) FILTER (WHERE d <= 10),"
	    " count(*) FILTER (WHERE d <= 30), count(*) FILTER (WHERE d <= 60),"
	    " count(*) FILTER (WHERE d <= 300), count(*) FILTER (WHERE d <= 3600),"
	    " count(*) FILTER (WHERE d <= 86400), count(*), coalesce(sum(d), 0)"
	    " FROM (SELECT extract(epoch FROM r.decided_at - r.created_at) d FROM requests r"
	    "   WHERE r.decided_at > now() - interval '24 hours') x");
	P25_STMT(susp, 0, "SELECT suspended_cause, count(*) FROM exemptions"
			  " WHERE suspended_cause IS NOT NULL GROUP BY 1 ORDER BY 1");
	P25_STMT(feed, 0, "SELECT coalesce(max(seq), 0) FROM feed_events");
	P25_STMT(nodes, 0,
	    "SELECT n.node, n.acked_seq, coalesce(extract(epoch FROM now() - (SELECT min(f.created_at)"
	    " FROM feed_events f WHERE f.seq > n.acked_seq)), 0)"
	    " FROM enforcement_nodes n ORDER BY 1 LIMIT 1000");
	static const char *const le[] = { "1", "2", "5", "10", "30", "60", "300", "3600", "86400" };
	struct p25_err err = { 0 };
	PGresult *res;
	int i;

	if (p25_db_begin_as(db, NULL, "system", &err) != 0)
		goto out;
	if ((res = p25_db_exec(db, &states, NULL, &err))) {
		bprintf(b, "# HELP p25_requests Requests by state.\n# TYPE p25_requests gauge\n");
		for (i = 0; i < PQntuples(res); i++)
			bprintf(b, "p25_requests{state=\"%s\"} %s\n", PQgetvalue(res, i, 0),
				PQgetvalue(res, i, 1));
		PQclear(res);
	}
	if ((res = p25_db_exec(db, &ttd, NULL, &err))) {
		bprintf(b, "# HELP p25_time_to_decision_seconds Submission to approval or denial, "
			   "requests decided in the last 24 h.\n"
			   "# TYPE p25_time_to_decision_seconds histogram\n");
		for (i = 0; i < 9; i++)
			bprintf(b, "p25_time_to_decision_seconds_bucket{le=\"%s\"} %s\n", le[i],
				PQgetvalue(res, 0, i));
		bprintf(b, "p25_time_to_decision_seconds_bucket{le=\"+Inf\"} %s\n"
			   "p25_time_to_decision_seconds_sum %s\np25_time_to_decision_seconds_count %s\n",
			PQgetvalue(res, 0, 9), PQgetvalue(res, 0, 10), PQgetvalue(res, 0, 9));
		PQclear(res);
	}
	if ((res = p25_db_exec(db, &susp, NULL, &err))) {
		bprintf(b, "# HELP p25_suspensions Exemptions suspended, by cause.\n"
			   "# TYPE p25_suspensions gauge\n");
		for (i = 0; i < PQntuples(res); i++)
			bprintf(b, "p25_suspensions{cause=\"%s\"} %s\n", PQgetvalue(res, i, 0),
				PQgetvalue(res, i, 1));
		PQclear(res);
	}
	if ((res = p25_db_exec(db, &feed, NULL, &err))) {
		bprintf(b, "# HELP p25_feed_position The feed's latest position.\n"
			   "# TYPE p25_feed_position gauge\np25_feed_position %s\n", PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	if ((res = p25_db_exec(db, &nodes, NULL, &err))) {
		bprintf(b, "# HELP p25_node_acked_position Feed position each enforcement node applied.\n"
			   "# TYPE p25_node_acked_position gauge\n");
		for (i = 0; i < PQntuples(res); i++)
			bprintf(b, "p25_node_acked_position{node=\"%s\"} %s\n", PQgetvalue(res, i, 0),
				PQgetvalue(res, i, 1));
		bprintf(b, "# HELP p25_node_oldest_unacked_seconds Age of the oldest event a node has "
			   "not acknowledged (0 when none).\n# TYPE p25_node_oldest_unacked_seconds gauge\n");
		for (i = 0; i < PQntuples(res); i++)
			bprintf(b, "p25_node_oldest_unacked_seconds{node=\"%s\"} %s\n",
				PQgetvalue(res, i, 0), PQgetvalue(res, i, 2));
		PQclear(res);
	}
out:
	p25_db_rollback(db);
	p25_err_clear(&err);
}

void
metrics_render(struct api_req *r, struct p25_db *db)
{
	P25_STMT(jobs_st, 0, "SELECT state, kind, count(*) FROM jobs GROUP BY state, kind ORDER BY 1, 2");
	struct buf b = { malloc(16384), 0, 16384, false };
	struct p25_pool_stats ps;
	unsigned long hits, misses;
	size_t ri, si, bi;
	int i;

	if (!b.p) {
		api_reply_problem(r, 503, "out_of_memory", "out of memory");
		return;
	}
	bprintf(&b, "# HELP p25_http_requests_total HTTP requests by route and status.\n"
		    "# TYPE p25_http_requests_total counter\n");
	for (ri = 0; ri <= MAX_ROUTES; ri++) {
		if (ri >= api_nroutes && ri != MAX_ROUTES)
			continue;
		for (si = 0; si < NSTATUS; si++) {
			unsigned long n = atomic_load_explicit(&req_count[ri][si], memory_order_relaxed);
			if (!n)
				continue;
			if (statuses[si])
				bprintf(&b, "p25_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %lu\n",
					route_method(ri), route_label(ri), statuses[si], n);
			else
				bprintf(&b, "p25_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\"} %lu\n",
					route_method(ri), route_label(ri), n);
		}
	}
	bprintf(&b, "# HELP p25_http_request_duration_seconds Time from first byte to answer.\n"
		    "# TYPE p25_http_request_duration_seconds histogram\n");
	for (ri = 0; ri <= MAX_ROUTES; ri++) {
		unsigned long cum = 0;
		if (ri >= api_nroutes && ri != MAX_ROUTES)
			continue;
		for (bi = 0; bi <= NBUCKETS; bi++)
			cum += atomic_load_explicit(&lat_bucket[ri][bi], memory_order_relaxed);
		if (!cum)
			continue;
		cum = 0;
		for (bi = 0; bi <= NBUCKETS; bi++) {
			cum += atomic_load_explicit(&lat_bucket[ri][bi], memory_order_relaxed);
			if (bi < NBUCKETS)
				bprintf(&b, "p25_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %lu\n",
					route_method(ri), route_label(ri), buckets[bi], cum);
			else
				bprintf(&b, "p25_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %lu\n",
					route_method(ri), route_label(ri), cum);
		}
		bprintf(&b, "p25_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n",
			route_method(ri), route_label(ri),
			(double)atomic_load(&lat_sum_us[ri]) / 1e6);
		bprintf(&b, "p25_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %lu\n",
			route_method(ri), route_label(ri), cum);
	}
	bprintf(&b, "# HELP p25_db_groups_total Groups of requests handled together (batched routes).\n"
		    "# TYPE p25_db_groups_total counter\n"
		    "# HELP p25_db_group_requests_total Requests carried by those groups.\n"
		    "# TYPE p25_db_group_requests_total counter\n");
	for (ri = 0; ri < api_nroutes && ri < MAX_ROUTES; ri++) {
		unsigned long g = atomic_load_explicit(&grp_count[ri], memory_order_relaxed);
		if (!g)
			continue;
		bprintf(&b, "p25_db_groups_total{method=\"%s\",route=\"%s\"} %lu\n"
			    "p25_db_group_requests_total{method=\"%s\",route=\"%s\"} %lu\n",
			route_method(ri), route_label(ri), g, route_method(ri), route_label(ri),
			atomic_load_explicit(&grp_reqs[ri], memory_order_relaxed));
	}
	p25_pool_stats(api.pool, &ps);
	bprintf(&b, "# HELP p25_db_pool_connections Database connections in the pool.\n"
		    "# TYPE p25_db_pool_connections gauge\np25_db_pool_connections %d\n"
		    "# HELP p25_db_pool_busy Connections running work.\n"
		    "# TYPE p25_db_pool_busy gauge\np25_db_pool_busy %d\n"
		    "# HELP p25_db_pool_waiting Work waiting for a connection.\n"
		    "# TYPE p25_db_pool_waiting gauge\np25_db_pool_waiting %d\n"
		    "# HELP p25_db_pool_rejected_total Work refused with 503 because the pool was full.\n"
		    "# TYPE p25_db_pool_rejected_total counter\np25_db_pool_rejected_total %lu\n",
		ps.size, ps.busy, ps.waiting, ps.rejected);
	p25_auth_stats(api.auth, &hits, &misses);
	bprintf(&b, "# HELP p25_auth_cache_hits_total Bearer tokens answered from the cache.\n"
		    "# TYPE p25_auth_cache_hits_total counter\np25_auth_cache_hits_total %lu\n"
		    "# HELP p25_auth_cache_misses_total Bearer tokens verified in full.\n"
		    "# TYPE p25_auth_cache_misses_total counter\np25_auth_cache_misses_total %lu\n",
		hits, misses);
	bprintf(&b, "# HELP p25_http_inflight Requests being handled.\n"
		    "# TYPE p25_http_inflight gauge\np25_http_inflight %ld\n",
		atomic_load(&api.inflight));
	bprintf(&b, "# HELP p25_feed_held Long-polls held waiting for feed events.\n"
		    "# TYPE p25_feed_held gauge\np25_feed_held %ld\n"
		    "# HELP p25_feed_position_known Highest feed position this process has seen.\n"
		    "# TYPE p25_feed_position_known gauge\np25_feed_position_known %lld\n",
		feed_held(), feed_latest());
	if (db)
		metrics_db(&b, db);
	if (db) {
		struct p25_err err = { 0 };
		PGresult *res = p25_db_exec(db, &jobs_st, NULL, &err);
		bprintf(&b, "# HELP p25_jobs Jobs by state and kind.\n# TYPE p25_jobs gauge\n");
		if (res) {
			for (i = 0; i < PQntuples(res); i++)
				bprintf(&b, "p25_jobs{state=\"%s\",kind=\"%s\"} %s\n",
					PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
					PQgetvalue(res, i, 2));
			PQclear(res);
		}
		bprintf(&b, "# HELP p25_db_up Whether the database answered this scrape.\n"
			    "# TYPE p25_db_up gauge\np25_db_up %d\n", res ? 1 : 0);
		p25_err_clear(&err);
	}
	if (b.oom)
		api_reply_problem(r, 503, "out_of_memory", "out of memory");
	else
		api_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
	free(b.p);
}
