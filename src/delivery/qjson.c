/*
 * delivery/qjson — a queued message (envelope + recipient state) as JSON
 * for the control protocol.  Strings from the network go in as they are:
 * jansson escapes them, and the CLI escapes again when printing.
 * Non-UTF-8 bytes would make jansson refuse a string, so those strings
 * are made safe first (bytes >= 0x80 that do not form UTF-8 become '?').
 */
#include <stdlib.h>
#include <string.h>

#include "delivery/qjson.h"

static json_t *
jstr(const char *s)
{
	json_t *j;
	char *copy;
	size_t i;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) != NULL)
		return j;
	if ((copy = strdup(s)) == NULL)
		return NULL;
	for (i = 0; copy[i]; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

const char *
dlv_msg_state(const struct qstate *st, int active)
{
	size_t i;

	if (active)
		return "active";
	if (st->held)
		return "held";
	for (i = 0; i < st->nrcpts; i++)
		if (st->rcpts[i].status == QS_DEFERRED)
			return "deferred";
	return "queued";
}

json_t *
dlv_msg_json(const struct envelope *env, const struct qstate *st, int active,
    int detail)
{
	json_t *o, *rc, *r;
	size_t i;

	if ((o = json_object()) == NULL || (rc = json_array()) == NULL) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "qid", json_string(env->qid));
	json_object_set_new(o, "arrival", json_integer((json_int_t)env->arrival));
	json_object_set_new(o, "size", json_integer((json_int_t)env->size));
	json_object_set_new(o, "from", jstr(env->mail_from));
	json_object_set_new(o, "state", json_string(dlv_msg_state(st, active)));
	json_object_set_new(o, "attempts", json_integer(st->attempts));
	json_object_set_new(o, "next", json_integer((json_int_t)st->next));
	json_object_set_new(o, "held", json_boolean(st->held));
	for (i = 0; i < env->nrcpts && i < st->nrcpts; i++) {
		const struct qstate_rcpt *q = &st->rcpts[i];

		if ((r = json_object()) == NULL)
			break;
		json_object_set_new(r, "addr", jstr(env->rcpts[i].addr));
		json_object_set_new(r, "status",
		    json_string(qstate_status_name(q->status)));
		json_object_set_new(r, "when", json_integer((json_int_t)q->when));
		json_object_set_new(r, "error", jstr(q->text));
		if (detail && env->rcpts[i].orcpt != NULL)
			json_object_set_new(r, "orcpt", jstr(env->rcpts[i].orcpt));
		if (detail)
			json_object_set_new(r, "notify",
			    json_integer(env->rcpts[i].notify));
		json_array_append_new(rc, r);
	}
	json_object_set_new(o, "rcpts", rc);
	if (detail) {
		json_t *h = json_array();

		json_object_set_new(o, "auth_user", jstr(env->auth_user));
		json_object_set_new(o, "client", jstr(env->client_addr));
		json_object_set_new(o, "helo", jstr(env->helo));
		json_object_set_new(o, "envid", jstr(env->envid));
		json_object_set_new(o, "ret", json_string(env->ret ==
		    ENV_RET_FULL ? "full" : env->ret == ENV_RET_HDRS ? "hdrs" :
		    "unset"));
		json_object_set_new(o, "body", json_string(env->body ==
		    ENV_BODY_7BIT ? "7bit" : env->body == ENV_BODY_8BITMIME ?
		    "8bitmime" : "binarymime"));
		json_object_set_new(o, "smtputf8", json_boolean(env->smtputf8));
		json_object_set_new(o, "dkim", jstr(env->dkim_domain));
		json_object_set_new(o, "warned", json_boolean(st->warned));
		for (i = 0; h != NULL && i < st->nhist; i++) {
			const struct qstate_hist *e = &st->hist[i];

			if ((r = json_object()) == NULL)
				break;
			json_object_set_new(r, "when",
			    json_integer((json_int_t)e->when));
			json_object_set_new(r, "rcpt", e->rcpt < env->nrcpts ?
			    jstr(env->rcpts[e->rcpt].addr) : json_null());
			json_object_set_new(r, "status",
			    json_string(qstate_status_name(e->status)));
			json_object_set_new(r, "relay", jstr(e->relay));
			json_object_set_new(r, "text", jstr(e->text));
			json_array_append_new(h, r);
		}
		json_object_set_new(o, "history", h ? h : json_array());
	}
	return o;
}
