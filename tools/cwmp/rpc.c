/* rpc.c - the CPE methods of seed 003 Appendix A: argument parsing, the data-model call,
 * the response body. Faults are returned in struct rpc_reply; agent.c wraps them. */
#include "agent.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fault(struct rpc_reply *r, int code)
{
	r->fault = code;
	r->fault_text = dm_fault_string(code);
}

/* Collects the string children of an array element (ParameterNames). NULL + fault on
 * error. */
static const char **strings(const struct xnode *arr, size_t *n, struct rpc_reply *r)
{
	*n = xnode_count(arr);
	if (*n > RPC_MAX_ITEMS) {
		fault(r, DM_RESOURCES_EXCEEDED);
		return NULL;
	}
	const char **v = calloc(*n ? *n : 1, sizeof *v);
	if (!v) {
		fault(r, DM_INTERNAL);
		return NULL;
	}
	size_t k = 0;
	for (const struct xnode *c = arr ? arr->child : NULL; c; c = c->next)
		v[k++] = c->text;
	return v;
}

/* The ParameterNames array of a request as strings (free the array, not the strings), or
 * NULL with the fault set. */
static const char **parameter_names(const struct xnode *req, size_t *n, struct rpc_reply *r)
{
	const struct xnode *names = xnode_child(req, "ParameterNames");
	if (!names) {
		fault(r, DM_INVALID_ARGUMENTS);
		return NULL;
	}
	return strings(names, n, r);
}

static void rpc_get_rpc_methods(struct agent *a, const struct xnode *req, struct rpc_reply *r)
{
	evbuffer_add_printf(r->body, "<cwmp:GetRPCMethodsResponse><MethodList soap-enc:arrayType=\"xsd:string[%zu]\">",
	                    rpc_method_count);
	for (size_t i = 0; i < rpc_method_count; i++)
		evbuffer_add_printf(r->body, "<string>%s</string>", rpc_methods[i].name);
	evbuffer_add_printf(r->body, "</MethodList></cwmp:GetRPCMethodsResponse>");
}

static void value_list(struct evbuffer *b, const struct dm_list *l)
{
	evbuffer_add_printf(b, "<ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[%zu]\">", l->n);
	for (size_t i = 0; i < l->n; i++) {
		evbuffer_add_printf(b, "<ParameterValueStruct><Name>");
		xml_esc(b, l->v[i].name);
		evbuffer_add_printf(b, "</Name><Value xsi:type=\"%s\">", dm_type_name(l->v[i].type));
		xml_esc(b, l->v[i].value ? l->v[i].value : "");
		evbuffer_add_printf(b, "</Value></ParameterValueStruct>");
	}
	evbuffer_add_printf(b, "</ParameterList>");
}

/* seed 003 A.3.2.2 */
static void rpc_get_parameter_values(struct agent *a, const struct xnode *req, struct rpc_reply *r)
{
	size_t n;
	const char **v = parameter_names(req, &n, r);
	if (!v)
		return;
	struct dm_list out = { 0 };
	struct dm_backend *dm = agent_dm(a);
	int rc = dm->ops->get_values(dm, v, n, &out);
	if (rc == DM_OK && out.n > 16 * RPC_MAX_ITEMS)
		rc = DM_RESOURCES_EXCEEDED;
	if (rc)
		fault(r, rc);
	else {
		evbuffer_add_printf(r->body, "<cwmp:GetParameterValuesResponse>");
		value_list(r->body, &out);
		evbuffer_add_printf(r->body, "</cwmp:GetParameterValuesResponse>");
	}
	dm_list_clear(&out);
	free(v);
}

/* seed 003 A.3.2.1: all or nothing; ParameterKey set only on success. */
static void rpc_set_parameter_values(struct agent *a, const struct xnode *req, struct rpc_reply *r)
{
	const struct xnode *list = xnode_child(req, "ParameterList");
	const struct xnode *key = xnode_child(req, "ParameterKey");
	if (!list || !key) {
		fault(r, DM_INVALID_ARGUMENTS);
		return;
	}
	size_t n = xnode_count(list);
	if (n > RPC_MAX_ITEMS) {
		fault(r, DM_RESOURCES_EXCEEDED);
		return;
	}
	struct dm_set *sets = calloc(n ? n : 1, sizeof *sets);
	if (!sets) {
		fault(r, DM_INTERNAL);
		return;
	}
	size_t k = 0;
	int bad = 0;
	for (const struct xnode *c = list->child; c; c = c->next, k++) {
		const struct xnode *name = xnode_child(c, "Name"), *value = xnode_child(c, "Value");
		if (!name || !value) {
			bad = DM_INVALID_ARGUMENTS;
			break;
		}
		sets[k].name = name->text;
		sets[k].value = value->text;
		sets[k].type = DM_STRING;
		if (value->xtype) {
			sets[k].typed = true;
			if (!dm_type_parse(value->xtype, &sets[k].type) || sets[k].type == DM_OBJECT) {
				/* an unknown type: this parameter is in error */
				if (dm_list_push(&r->param_faults, name->text, DM_STRING, NULL, false) == DM_OK)
					r->param_faults.v[r->param_faults.n - 1].fault = DM_INVALID_TYPE;
				bad = DM_INVALID_ARGUMENTS;
			}
		}
		/* the same name twice: Invalid arguments (TR-069 Amendment 1+) */
		for (size_t j = 0; j < k; j++)
			if (!strcmp(sets[j].name, sets[k].name))
				bad = DM_INVALID_ARGUMENTS;
	}
	if (!bad) {
		struct dm_backend *dm = agent_dm(a);
		bad = dm->ops->set_values(dm, sets, n, &r->param_faults);
	}
	free(sets);
	if (bad) {
		fault(r, bad);
		return;
	}
	agent_parameter_key(a, key->text);
	agent_attrs_resnapshot(a); /* changes by the ACS itself notify nothing (seed 003 §3.2.1) */
	evbuffer_add_printf(r->body, "<cwmp:SetParameterValuesResponse><Status>0</Status></cwmp:SetParameterValuesResponse>");
}

/* seed 003 A.3.2.3 */
static void rpc_get_parameter_names(struct agent *a, const struct xnode *req, struct rpc_reply *r)
{
	const struct xnode *path = xnode_child(req, "ParameterPath"), *nl = xnode_child(req, "NextLevel");
	if (!path || !nl) {
		fault(r, DM_INVALID_ARGUMENTS);
		return;
	}
	bool next;
	if (!strcmp(nl->text, "1") || !strcmp(nl->text, "true"))
		next = true;
	else if (!strcmp(nl->text, "0") || !strcmp(nl->text, "false"))
		next = false;
	else {
		fault(r, DM_INVALID_ARGUMENTS);
		return;
	}
	struct dm_list out = { 0 };
	struct dm_backend *dm = agent_dm(a);
	int rc = dm->ops->get_names(dm, path->text, next, &out);
	if (rc)
		fault(r, rc);
	else {
		evbuffer_add_printf(r->body, "<cwmp:GetParameterNamesResponse><ParameterList "
		                             "soap-enc:arrayType=\"cwmp:ParameterInfoStruct[%zu]\">", out.n);
		for (size_t i = 0; i < out.n; i++) {
			evbuffer_add_printf(r->body, "<ParameterInfoStruct><Name>");
			xml_esc(r->body, out.v[i].name);
			evbuffer_add_printf(r->body, "</Name><Writable>%d</Writable></ParameterInfoStruct>",
			                    out.v[i].writable ? 1 : 0);
		}
		evbuffer_add_printf(r->body, "</ParameterList></cwmp:GetParameterNamesResponse>");
	}
	dm_list_clear(&out);
}

static bool parse_bool(const struct xnode *n, bool *out)
{
	if (!n)
		return false;
	if (!strcmp(n->text, "1") || !strcmp(n->text, "true"))
		*out = true;
	else if (!strcmp(n->text, "0") || !strcmp(n->text, "false"))
		*out = false;
	else
		return false;
	return true;
}

/* seed 003 A.3.2.4: checked completely before anything is applied. */
static void rpc_set_parameter_attributes(struct agent *a, const struct xnode *req, struct rpc_reply *r)
{
	const struct xnode *list = xnode_child(req, "ParameterList");
	if (!list) {
		fault(r, DM_INVALID_ARGUMENTS);
		return;
	}
	if (xnode_count(list) > RPC_MAX_ITEMS) {
		fault(r, DM_RESOURCES_EXCEEDED);
		return;
	}
	struct dm_backend *dm = agent_dm(a);
	for (int pass = 0; pass < 2; pass++)
		for (const struct xnode *c = list->child; c; c = c->next) {
			const struct xnode *name = xnode_child(c, "Name"), *note = xnode_child(c, "Notification");
			bool change;
			if (!name || !parse_bool(xnode_child(c, "NotificationChange"), &change) || (change && !note)) {
				fault(r, DM_INVALID_ARGUMENTS);
				return;
			}
			if (!change)
				continue;
			if (strcmp(note->text, "0") && strcmp(note->text, "1") && strcmp(note->text, "2")) {
				fault(r, DM_INVALID_ARGUMENTS);
				return;
			}
			struct dm_list vals = { 0 };
			const char *p = name->text;
			int rc = dm->ops->get_values(dm, &p, 1, &vals);
			if (rc) {
				dm_list_clear(&vals);
				fault(r, rc);
				return;
			}
			for (size_t i = 0; pass == 1 && i < vals.n; i++)
				if ((rc = agent_attr_set(a, vals.v[i].name, note->text[0] - '0'))) {
					dm_list_clear(&vals);
					fault(r, rc);
					return;
				}
			dm_list_clear(&vals);
		}
	agent_attrs_resnapshot(a);
	evbuffer_add_printf(r->body, "<cwmp:SetParameterAttributesResponse/>");
}

/* seed 003 A.3.2.5 */
static void rpc_get_parameter_attributes(struct agent *a, const struct xnode *req, struct rpc_reply *r)
{
	size_t n;
	const char **v = parameter_names(req, &n, r);
	if (!v)
		return;
	struct dm_list out = { 0 };
	struct dm_backend *dm = agent_dm(a);
	int rc = dm->ops->get_values(dm, v, n, &out);
	free(v);
	if (rc) {
		dm_list_clear(&out);
		fault(r, rc);
		return;
	}
	size_t na;
	struct attr *at = agent_attrs(a, &na);
	evbuffer_add_printf(r->body, "<cwmp:GetParameterAttributesResponse><ParameterList "
	                             "soap-enc:arrayType=\"cwmp:ParameterAttributeStruct[%zu]\">", out.n);
	for (size_t i = 0; i < out.n; i++) {
		int note = 0;
		for (size_t j = 0; j < na; j++)
			if (!strcmp(at[j].name, out.v[i].name))
				note = at[j].notification;
		evbuffer_add_printf(r->body, "<ParameterAttributeStruct><Name>");
		xml_esc(r->body, out.v[i].name);
		evbuffer_add_printf(r->body, "</Name><Notification>%d</Notification>"
		                             "<AccessList soap-enc:arrayType=\"xsd:string[0]\"></AccessList>"
		                             "</ParameterAttributeStruct>", note);
	}
	evbuffer_add_printf(r->body, "</ParameterList></cwmp:GetParameterAttributesResponse>");
	dm_list_clear(&out);
}

/* seed 003 A.3.2.6 */
static void rpc_add_object(struct agent *a, const struct xnode *req, struct rpc_reply *r)
{
	const struct xnode *name = xnode_child(req, "ObjectName"), *key = xnode_child(req, "ParameterKey");
	if (!name || !key) {
		fault(r, DM_INVALID_ARGUMENTS);
		return;
	}
	unsigned inst = 0;
	struct dm_backend *dm = agent_dm(a);
	int rc = dm->ops->add_object(dm, name->text, &inst);
	if (rc) {
		fault(r, rc);
		return;
	}
	agent_parameter_key(a, key->text);
	evbuffer_add_printf(r->body, "<cwmp:AddObjectResponse><InstanceNumber>%u</InstanceNumber><Status>0</Status>"
	                             "</cwmp:AddObjectResponse>", inst);
}

/* seed 003 A.3.2.7 */
static void rpc_delete_object(struct agent *a, const struct xnode *req, struct rpc_reply *r)
{
	const struct xnode *name = xnode_child(req, "ObjectName"), *key = xnode_child(req, "ParameterKey");
	if (!name || !key) {
		fault(r, DM_INVALID_ARGUMENTS);
		return;
	}
	struct dm_backend *dm = agent_dm(a);
	int rc = dm->ops->delete_object(dm, name->text);
	if (rc) {
		fault(r, rc);
		return;
	}
	agent_parameter_key(a, key->text);
	agent_attrs_resnapshot(a);
	evbuffer_add_printf(r->body, "<cwmp:DeleteObjectResponse><Status>0</Status></cwmp:DeleteObjectResponse>");
}

/* seed 003 A.3.2.9: the reboot happens after the session has ended (§3.7.1.4). */
static void rpc_reboot(struct agent *a, const struct xnode *req, struct rpc_reply *r)
{
	const struct xnode *key = xnode_child(req, "CommandKey");
	if (!key || strlen(key->text) > 32) {
		fault(r, DM_INVALID_ARGUMENTS);
		return;
	}
	agent_after_session(a, 1, key->text);
	evbuffer_add_printf(r->body, "<cwmp:RebootResponse/>");
}

/* seed 003 A.4.1.6 */
static void rpc_factory_reset(struct agent *a, const struct xnode *req, struct rpc_reply *r)
{
	agent_after_session(a, 2, "");
	evbuffer_add_printf(r->body, "<cwmp:FactoryResetResponse/>");
}

const struct rpc_method rpc_methods[] = {
	{ "GetRPCMethods", rpc_get_rpc_methods },
	{ "GetParameterValues", rpc_get_parameter_values },
	{ "SetParameterValues", rpc_set_parameter_values },
	{ "GetParameterNames", rpc_get_parameter_names },
	{ "SetParameterAttributes", rpc_set_parameter_attributes },
	{ "GetParameterAttributes", rpc_get_parameter_attributes },
	{ "AddObject", rpc_add_object },
	{ "DeleteObject", rpc_delete_object },
	{ "Reboot", rpc_reboot },
	{ "FactoryReset", rpc_factory_reset },
};
const size_t rpc_method_count = sizeof rpc_methods / sizeof rpc_methods[0];
