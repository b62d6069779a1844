/* soap_case.h - the corpus/fuzzer input format of the SOAP parser tests:
 *   X-Service: IP1|IP2|PPP1|CIC1|L3F1\n X-Expect: N\n [SOAPACTION: value\n] \n body
 * Unknown or missing header lines are tolerated (fuzz inputs): service IP1, no SOAPACTION,
 * expect -1. */
#ifndef IWFD_TESTS_UPNP_SOAP_CASE_H
#define IWFD_TESTS_UPNP_SOAP_CASE_H

#include "content.h"

#include <string.h>

struct soap_case {
	enum upnp_flavour service;
	int expect;                /* -1 = not given */
	char soapaction[512];
	bool has_soapaction;
	const char *body;
	size_t body_len;
};

static inline bool soap_case_line(const char *line, size_t len, const char *key, const char **val,
				  size_t *vlen)
{
	size_t k = strlen(key);

	if (len < k || memcmp(line, key, k) != 0)
		return false;
	*val = line + k;
	*vlen = len - k;
	return true;
}

static inline void soap_case_split(const uint8_t *data, size_t size, struct soap_case *c)
{
	static const char *const names[UPNP_FL__COUNT] = { "IP1", "IP2", "PPP1", "CIC1", "L3F1" };
	const char *p = (const char *)data, *end = p + size;

	memset(c, 0, sizeof *c);
	c->service = UPNP_FL_IP1;
	c->expect = -1;
	c->body = p;
	c->body_len = size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		const char *v;
		size_t vl;

		if (len == 0) { /* blank line: body follows */
			c->body = p + 1;
			c->body_len = (size_t)(end - p - 1);
			return;
		}
		if (soap_case_line(p, len, "X-Service: ", &v, &vl)) {
			for (int i = 0; i < UPNP_FL__COUNT; i++)
				if (strlen(names[i]) == vl && memcmp(names[i], v, vl) == 0)
					c->service = (enum upnp_flavour)i;
		} else if (soap_case_line(p, len, "X-Expect: ", &v, &vl)) {
			uint32_t e;
			if (upnp_parse_uint(v, vl, 999, &e))
				c->expect = (int)e;
		} else if (soap_case_line(p, len, "SOAPACTION: ", &v, &vl) &&
			   vl < sizeof c->soapaction) {
			memcpy(c->soapaction, v, vl);
			c->soapaction[vl] = '\0';
			c->has_soapaction = true;
		} else {
			return; /* not a header: the whole input is the body */
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	/* headers only, no blank line: empty body */
	if (p >= end) {
		c->body = end;
		c->body_len = 0;
	}
}

/* Parse the case and, as a fuzz target also does, format the answer. Returns the code. */
static inline int soap_case_run(const struct soap_case *c)
{
	struct upnp_soap_req r;
	struct upnp_buf b;
	int rc = upnp_soap_parse(c->body, c->body_len, c->has_soapaction ? c->soapaction : NULL,
				 c->service, &r);

	upnp_buf_init(&b);
	if (rc == 0) {
		struct upnp_reply reply;
		memset(&reply, 0, sizeof reply);
		reply.pm = r.args.pm; /* echo what was parsed: round trip through the writer */
		reply.text = r.args.text;
		reply.text2 = r.args.text2;
		reply.list = &r.args.pm;
		reply.n_list = 1;
		upnp_soap_response(&b, r.def, r.ns, &reply);
	} else {
		upnp_soap_fault(&b, rc);
	}
	upnp_buf_free(&b);
	return rc;
}

#endif
