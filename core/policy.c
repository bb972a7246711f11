/*
 * policy.c — the vetting policy as data (see vetting.h and docs/policy.md).
 *
 * A policy maps every reason code a check can raise to an action.  The
 * decision is the most severe action among the codes raised; warnings and
 * ignored codes never block.  Codes that stand for "we could not find out"
 * (*_error) may only map to needs_review or deny: an unknown can send a
 * request to a person, never approve it.
 */
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "p25/config.h"
#include "p25/err.h"
#include "p25/vetting.h"

static const struct {
	const char *code;
	enum p25_action action;
	const char *what;
} default_actions[] = {
	{ "dnsbl_sbl", P25_ACT_DENY, "listed in the Spamhaus Block List" },
	{ "dnsbl_css", P25_ACT_DENY, "listed in the Spamhaus CSS (snowshoe spam)" },
	{ "dnsbl_xbl", P25_ACT_DENY, "listed in the Exploits Block List (compromised host)" },
	{ "dnsbl_drop", P25_ACT_DENY, "listed in DROP (hijacked or criminal network)" },
	{ "dnsbl_pbl", P25_ACT_WARN, "listed in the Policy Block List (end-user space): not abuse" },
	{ "dnsbl_other", P25_ACT_NEEDS_REVIEW, "listed with a code this policy does not know" },
	{ "dnsbl_error", P25_ACT_NEEDS_REVIEW, "the DNSBL could not be asked" },
	{ "rdns_missing", P25_ACT_NEEDS_INFO, "no reverse DNS (PTR) record" },
	{ "rdns_not_confirmed", P25_ACT_NEEDS_INFO, "the PTR name does not resolve back to the address" },
	{ "rdns_generic", P25_ACT_NEEDS_INFO, "the PTR name is a generic, address-derived name" },
	{ "rdns_invalid", P25_ACT_NEEDS_INFO, "the PTR record is not a valid host name" },
	{ "rdns_error", P25_ACT_NEEDS_REVIEW, "reverse DNS could not be checked" },
	{ "account_young", P25_ACT_NEEDS_REVIEW, "the account is younger than the policy's minimum age" },
	{ "account_unverified", P25_ACT_NEEDS_REVIEW, "the account is not verified" },
	{ "account_standing", P25_ACT_DENY, "the account is not in good standing" },
	{ "account_unknown", P25_ACT_DENY, "the tenant is not registered" },
	{ "address_not_held", P25_ACT_DENY, "an address is not in the tenant's inventory" },
	{ "history_denials", P25_ACT_NEEDS_REVIEW, "many recent denials" },
	{ "history_abuse", P25_ACT_NEEDS_REVIEW, "exemptions suspended for abuse recently" },
	{ "history_rate", P25_ACT_NEEDS_REVIEW, "many requests in the last day" },
	{ "spf_fail", P25_ACT_WARN, "SPF does not authorize the address" },
	{ "spf_missing", P25_ACT_WARN, "the domain publishes no SPF record" },
	{ "spf_error", P25_ACT_NEEDS_REVIEW, "SPF could not be evaluated" },
	{ "dmarc_missing", P25_ACT_WARN, "the domain publishes no DMARC record" },
	{ "dmarc_error", P25_ACT_NEEDS_REVIEW, "DMARC could not be looked up" },
};
#define NDEFAULT (sizeof(default_actions) / sizeof(default_actions[0]))

static const char *const action_names[] = { "ignore", "warn", "needs_info",
					    "needs_review", "deny" };

const char *
p25_action_str(enum p25_action a)
{
	return action_names[a];
}

void
p25_policy_defaults(struct p25_policy *p)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	snprintf(p->version, sizeof(p->version), "builtin-2026-11");
	for (i = 0; i < NDEFAULT && i < P25_POLICY_MAX_CODES; i++) {
		snprintf(p->actions[i].code, sizeof(p->actions[i].code), "%s",
			 default_actions[i].code);
		p->actions[i].action = default_actions[i].action;
	}
	p->nactions = (int)i;
	p->account_min_age_days = 30;
	p->history_max_denials_30d = 3;
	p->history_max_requests_24h = 20;
	p->deny_reapply_days = 30;
	p->exemption_days = 90;
	p->recheck_interval_seconds = 300;
	p->cooldown_hours[0] = 1;
	p->cooldown_hours[1] = 24;
	p->cooldown_hours[2] = 168;
	p->cooldown_hours[3] = 720;
	p->ncooldown = 4;
	p->self_reinstate = true;
	p->monitor_interval_seconds = 3600;
	p->monitor_error_review = 3;
}

void
p25_policy_cooldowns(const struct p25_policy *p, char *buf, size_t len)
{
	size_t used = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < p->ncooldown; i++) {
		int n = snprintf(buf + used, len - used, "%s%d", i ? "," : "{", p->cooldown_hours[i]);
		if (n < 0 || (size_t)n >= len - used)
			return;
		used += (size_t)n;
	}
	snprintf(buf + used, len - used, "}");
}

enum p25_action
p25_policy_action(const struct p25_policy *p, const char *code)
{
	int i;

	for (i = 0; i < p->nactions; i++)
		if (strcmp(p->actions[i].code, code) == 0)
			return p->actions[i].action;
	return P25_ACT_NEEDS_REVIEW;	/* an unknown code is never approved */
}

static int
int_field(json_t *o, const char *key, int lo, int hi, int *out, struct p25_err *err)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return p25_err_field(err, 422, "invalid_policy", key,
				     "%s must be a whole number from %d to %d", key, lo, hi);
	*out = (int)json_integer_value(v);
	return 0;
}

int
p25_policy_parse(const char *text, size_t len, struct p25_policy *p, struct p25_err *err)
{
	static const char *const keys[] = { "version", "actions", "account_min_age_days",
		"history_max_denials_30d", "history_max_requests_24h", "deny_reapply_days",
		"exemption_days", "recheck_interval_seconds", "description", "cooldown_hours",
		"self_reinstate", "monitor_interval_seconds", "monitor_error_review", NULL };
	json_error_t je;
	json_t *o, *acts, *v;
	const char *key;
	int rc = -1;

	p25_policy_defaults(p);
	o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(o)) {
		p25_err_set(err, 422, "invalid_policy", "the policy is not a JSON object: %s (line %d)",
			    je.text, je.line);
		goto out;
	}
	json_object_foreach(o, key, v) {
		const char *const *k;
		for (k = keys; *k && strcmp(*k, key) != 0; k++)
			;
		if (!*k) {
			p25_err_field(err, 422, "invalid_policy", key, "unknown key \"%s\"", key);
			goto out;
		}
	}
	v = json_object_get(o, "version");
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= sizeof(p->version)) {
		p25_err_field(err, 422, "invalid_policy", "version",
			      "version must be a non-empty string of at most 63 characters");
		goto out;
	}
	snprintf(p->version, sizeof(p->version), "%s", json_string_value(v));
	acts = json_object_get(o, "actions");
	if (acts && !json_is_object(acts)) {
		p25_err_field(err, 422, "invalid_policy", "actions", "actions must be an object");
		goto out;
	}
	json_object_foreach(acts, key, v) {
		int i, a = -1;
		const char *name = json_string_value(v);
		for (i = 0; name && i < 5; i++)
			if (strcmp(action_names[i], name) == 0)
				a = i;
		for (i = 0; i < p->nactions && strcmp(p->actions[i].code, key) != 0; i++)
			;
		if (i == p->nactions) {
			p25_err_field(err, 422, "invalid_policy", key, "unknown reason code \"%s\"", key);
			goto out;
		}
		if (a < 0) {
			p25_err_field(err, 422, "invalid_policy", key,
			    "the action for %s must be ignore, warn, needs_info, needs_review or deny", key);
			goto out;
		}
		if (strstr(key, "_error") && a < P25_ACT_NEEDS_REVIEW) {
			p25_err_field(err, 422, "invalid_policy", key,
			    "%s stands for an unknown result: it may only be needs_review or deny", key);
			goto out;
		}
		p->actions[i].action = (enum p25_action)a;
	}
	if (int_field(o, "account_min_age_days", 0, 3650, &p->account_min_age_days, err) ||
	    int_field(o, "history_max_denials_30d", 0, 1000, &p->history_max_denials_30d, err) ||
	    int_field(o, "history_max_requests_24h", 1, 100000, &p->history_max_requests_24h, err) ||
	    int_field(o, "deny_reapply_days", 0, 3650, &p->deny_reapply_days, err) ||
	    int_field(o, "exemption_days", 1, 3650, &p->exemption_days, err) ||
	    int_field(o, "recheck_interval_seconds", 0, 86400, &p->recheck_interval_seconds, err) ||
	    int_field(o, "monitor_interval_seconds", 10, 604800, &p->monitor_interval_seconds, err) ||
	    int_field(o, "monitor_error_review", 1, 1000, &p->monitor_error_review, err))
		goto out;
	v = json_object_get(o, "self_reinstate");
	if (v && !json_is_boolean(v)) {
		p25_err_field(err, 422, "invalid_policy", "self_reinstate", "self_reinstate must be true or false");
		goto out;
	}
	if (v)
		p->self_reinstate = json_is_true(v);
	v = json_object_get(o, "cooldown_hours");
	if (v) {
		size_t i;
		json_t *h;
		if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > 8) {
			p25_err_field(err, 422, "invalid_policy", "cooldown_hours",
				      "cooldown_hours must be an array of 1 to 8 whole numbers");
			goto out;
		}
		json_array_foreach(v, i, h) {
			if (!json_is_integer(h) || json_integer_value(h) < 0 || json_integer_value(h) > 87600) {
				p25_err_field(err, 422, "invalid_policy", "cooldown_hours",
					      "cooldown_hours entries must be 0 to 87600");
				goto out;
			}
			p->cooldown_hours[i] = (int)json_integer_value(h);
		}
		p->ncooldown = (int)json_array_size(v);
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

int
p25_policy_load(const char *path, struct p25_policy *p, struct p25_err *err)
{
	size_t len;
	char *text;
	int rc;

	if (!path || !*path) {
		p25_policy_defaults(p);
		return 0;
	}
	text = p25_read_file(path, 1 << 20, &len);
	if (!text)
		return p25_err_set(err, 500, "bad_config", "P25_POLICY_FILE: cannot read %s", path);
	rc = p25_policy_parse(text, len, p, err);
	free(text);
	return rc;
}

void
p25_policy_decide(const struct p25_policy *p, const struct p25_checks *c,
		  struct p25_decision *out)
{
	enum p25_action worst = P25_ACT_IGNORE;
	size_t used = 0;
	int i;

	memset(out, 0, sizeof(*out));
	out->reason_codes = json_array();
	for (i = 0; i < c->n; i++) {
		enum p25_action a;
		if (!c->v[i].code[0])
			continue;
		a = p25_policy_action(p, c->v[i].code);
		if (a > worst)
			worst = a;
	}
	for (i = 0; i < c->n; i++) {
		const struct p25_check *k = &c->v[i];
		size_t j;
		bool seen = false;
		int n;

		if (!k->code[0] || p25_policy_action(p, k->code) < P25_ACT_NEEDS_INFO)
			continue;
		for (j = 0; j < json_array_size(out->reason_codes); j++)
			if (strcmp(json_string_value(json_array_get(out->reason_codes, j)), k->code) == 0)
				seen = true;
		if (!seen)
			json_array_append_new(out->reason_codes, json_string(k->code));
		/* the message: what to fix, one line per finding */
		if (used < sizeof(out->message) - 1) {
			n = snprintf(out->message + used, sizeof(out->message) - used, "%s%s: %s",
				     used ? "\n" : "", k->subject, k->hint);
			if (n > 0)
				used += (size_t)n < sizeof(out->message) - used ? (size_t)n
						: sizeof(out->message) - used - 1;
		}
	}
	switch (worst) {
	case P25_ACT_DENY:
		snprintf(out->decision, sizeof(out->decision), "deny");
		out->reapply_days = p->deny_reapply_days;
		break;
	case P25_ACT_NEEDS_REVIEW:
		snprintf(out->decision, sizeof(out->decision), "needs_review");
		break;
	case P25_ACT_NEEDS_INFO:
		snprintf(out->decision, sizeof(out->decision), "needs_info");
		break;
	default:
		snprintf(out->decision, sizeof(out->decision), "approve");
		snprintf(out->message, sizeof(out->message),
			 "approved: every check passed the policy");
		break;
	}
}

void
p25_decision_free(struct p25_decision *d)
{
	json_decref(d->reason_codes);
	d->reason_codes = NULL;
}
