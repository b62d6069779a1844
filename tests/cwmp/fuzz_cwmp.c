/*
 * fuzz_cwmp.c - libFuzzer target for what an ACS or a connection requester can send to
 * iwf-cwmp: an HTTP body parsed by the bounded XML reader (soap.c), the RPC named in it
 * run through the real RPC table (rpc.c) against the static in-memory backend, and the
 * first line of the input as an Authorization header (auth.c, server side) and as a
 * WWW-Authenticate challenge (client side).
 * Properties: no crash, no leak, no sanitizer report; an answer is a response or a fault
 * with a code in 9000..9009; a fault's per-parameter rows only on SetParameterValues.
 * With other compilers tests/pcp/fuzz_replay_main.c replays the seed corpus.
 */
#include "agent.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What rpc.c asks of the agent, for one RPC at a time. */
struct agent {
	struct dm_backend *dm;
	struct attr attrs[8];
	size_t nattrs;
};
struct dm_backend *agent_dm(struct agent *a) { return a->dm; }
void agent_parameter_key(struct agent *a, const char *key) { (void)a; (void)key; }
void agent_after_session(struct agent *a, int what, const char *key) { (void)a; (void)what; (void)key; }
struct attr *agent_attrs(struct agent *a, size_t *n)
{
	*n = a->nattrs;
	return a->attrs;
}
int agent_attr_set(struct agent *a, const char *name, int notification)
{
	if (a->nattrs == 8)
		return DM_RESOURCES_EXCEEDED;
	a->attrs[a->nattrs++] = (struct attr){ strdup(name), notification, NULL, false };
	return DM_OK;
}
void agent_attrs_resnapshot(struct agent *a) { (void)a; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the first line: authentication headers */
	char line[1024];
	size_t n = 0;
	while (n < size && n < sizeof line - 1 && data[n] != '\n')
		n++;
	memcpy(line, data, n);
	line[n] = '\0';
	struct auth_server s = { .realm = "iwf-cwmp", .user = "acs", .pass = "pw" };
	uint8_t r[16] = { 0 };
	char ch[256], out[2048];
	auth_server_challenge(&s, 1, r, ch, sizeof ch);
	(void)auth_server_check(&s, line, "GET", 2);
	(void)auth_client_answer(line, "u", "p", "POST", "/acs", 1, "c", out, sizeof out);

	struct xnode *env = xml_parse((const char *)data, size);
	const struct xnode *body = xnode_child(env, "Body");
	const struct xnode *req = body ? body->child : NULL;
	if (req) {
		struct agent a = { .dm = dm_static_new() };
		for (size_t i = 0; i < rpc_method_count; i++) {
			if (strcmp(rpc_methods[i].name, req->name))
				continue;
			struct rpc_reply rep = { evbuffer_new(), 0, NULL, { 0 } };
			rpc_methods[i].handle(&a, req, &rep);
			if (rep.fault && (rep.fault < 9000 || rep.fault > 9009))
				abort();
			if (rep.param_faults.n && strcmp(req->name, "SetParameterValues"))
				abort();
			evbuffer_free(rep.body);
			dm_list_clear(&rep.param_faults);
		}
		for (size_t i = 0; i < a.nattrs; i++)
			free(a.attrs[i].name);
		dm_free(a.dm);
	}
	xnode_free(env);
	return 0;
}
