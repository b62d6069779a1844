/*
 * soap.c - SOAP 1.1 control requests (UDA 1.1 §3.2): parsing with expat in namespace mode,
 * argument checks driven by the tables of actions.c, success and fault envelopes, and the
 * PortListing document of WANIPConnection:2.
 *
 * Error choice (documented in docs/upnp.md):
 *   401 Invalid Action  - no SOAP envelope, XML not well-formed before the action element,
 *                         s:Body without exactly one element, action element outside the
 *                         service's namespace, unknown action, SOAPACTION header naming a
 *                         different service type or action than the body (UDA 1.1 §3.2.1
 *                         requires both to name the same action; 401 is UDA's "no action by
 *                         that name at this service").
 *   402 Invalid Args    - unknown, missing, duplicated or ill-typed argument, element inside
 *                         an argument, XML broken after the action element started.
 *   716 / 732 / 733     - syntax-level rules of WANIPConnection (see check_rules()).
 */
#include "content.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SOAP_ENV_NS "http://schemas.xmlsoap.org/soap/envelope/"
#define SOAP_ENC_NS "http://schemas.xmlsoap.org/soap/encoding/"
#define SERVICE_URN_PREFIX "urn:schemas-upnp-org:service:"
#define NS_SEP ' '            /* URIs cannot contain a space (RFC 3986) */
#define ARG_TEXT_MAX 1024     /* beyond: 402, except the description (truncated) */
#define MAX_DEPTH 32

/* ------------------------------------------------------------------ scalar parsers */

static bool is_xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'; /* XML 1.0 §2.3 S */
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_xml_space(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_xml_space((*s)[*len - 1]))
		(*len)--;
}

bool upnp_parse_uint(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	trim(&s, &len);
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

bool upnp_parse_bool(const char *s, size_t len, bool *out)
{
	static const struct { const char *word; bool value; } words[] = {
		{ "0", false }, { "1", true }, { "false", false }, { "true", true },
		{ "no", false }, { "yes", true },
	};

	trim(&s, &len);
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		if (strlen(words[i].word) == len && strncasecmp(words[i].word, s, len) == 0) {
			*out = words[i].value;
			return true;
		}
	}
	return false;
}

static bool parse_ipv4(const char *s, size_t len, char *out, size_t cap)
{
	char tmp[INET_ADDRSTRLEN];
	struct in_addr a;

	trim(&s, &len);
	if (len == 0 || len >= sizeof tmp || len >= cap)
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET, tmp, &a) != 1) /* dotted quad only */
		return false;
	memcpy(out, tmp, len + 1);
	return true;
}

/* InternalClient / RemoteHost: an IPv4 dotted quad, as given; or (UDA 1.1 Annex A, an
 * IPv6-only LAN host naming itself) an IPv6 literal, passed on in its RFC 5952 form. Not
 * accepted for IPv6: a zone id ("fe80::1%eth0": the zone is the sender's, and the mapping
 * is for a host, not a link), brackets, IPv4-mapped addresses (::ffff:a.b.c.d: the IPv4
 * host is named by its dotted quad), and what can never be a LAN host (::, ::1,
 * multicast). What an address may be used for is iwf/'s decision. */
static bool parse_host(const char *s, size_t len, char *out, size_t cap)
{
	char tmp[INET6_ADDRSTRLEN];
	struct in6_addr a;

	trim(&s, &len);
	if (memchr(s, ':', len) == NULL)
		return parse_ipv4(s, len, out, cap);
	if (len == 0 || len >= sizeof tmp)
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET6, tmp, &a) != 1 || IN6_IS_ADDR_V4MAPPED(&a) ||
	    IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LOOPBACK(&a) || IN6_IS_ADDR_MULTICAST(&a))
		return false;
	return inet_ntop(AF_INET6, &a, out, (socklen_t)cap) != NULL;
}

/* Copy at most max bytes of s, not splitting a UTF-8 sequence. */
static void copy_utf8_capped(char *dst, const char *s, size_t len, size_t max)
{
	if (len > max) {
		len = max;
		while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
			len--; /* s[len] is a continuation byte: cut before its lead byte */
	}
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/* ------------------------------------------------------------------ parser */

struct parser {
	XML_Parser xp;
	struct upnp_soap_req *req;
	enum upnp_flavour hosted, eff;
	const char *sa_ns, *sa_act; /* SOAPACTION parts, or NULL when absent */
	size_t sa_ns_len, sa_act_len;
	int err;
	unsigned depth;
	bool in_header, seen_header, seen_body, seen_action;
	int cur_arg;
	uint32_t seen_args;
	char text[ARG_TEXT_MAX];
	size_t text_len;
	bool text_overflow;
};

static void fail(struct parser *p, int code)
{
	if (p->err == 0)
		p->err = code;
	XML_StopParser(p->xp, XML_FALSE);
}

static void split_name(const char *name, const char **ns, size_t *ns_len, const char **local)
{
	const char *sep = strrchr(name, NS_SEP);

	if (sep == NULL) {
		*ns = "";
		*ns_len = 0;
		*local = name;
	} else {
		*ns = name;
		*ns_len = (size_t)(sep - name);
		*local = sep + 1;
	}
}

static bool ns_is(const char *ns, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(ns, want, len) == 0;
}

/* "urn:schemas-upnp-org:service:<type>:<v>" naming the hosted service at version <= ours:
 * the flavour whose actions apply (a v1 control point may drive our :2 service). */
static bool service_ns_flavour(const char *ns, size_t len, enum upnp_flavour hosted,
			       enum upnp_flavour *eff, uint8_t *version)
{
	const struct upnp_flavour_def *f = upnp_flavour_get(hosted);
	size_t plen = strlen(SERVICE_URN_PREFIX), tlen;

	if (f == NULL || len <= plen || memcmp(ns, SERVICE_URN_PREFIX, plen) != 0)
		return false;
	ns += plen;
	len -= plen;
	tlen = strlen(f->type);
	if (len != tlen + 2 || memcmp(ns, f->type, tlen) != 0 || ns[tlen] != ':')
		return false;
	if (ns[tlen + 1] < '1' || ns[tlen + 1] > '0' + f->version)
		return false;
	*eff = hosted;
	*version = (uint8_t)(ns[tlen + 1] - '0');
	if (hosted == UPNP_FL_IP2 && ns[tlen + 1] == '1')
		*eff = UPNP_FL_IP1;
	return true;
}

static void start_action(struct parser *p, const char *ns, size_t ns_len, const char *local)
{
	const struct upnp_action_def *d;

	if (p->seen_action) { /* UDA 1.1 §3.2.1: exactly one action element in Body */
		fail(p, 401);
		return;
	}
	p->seen_action = true;
	if (ns_is(ns, ns_len, UPNP_CONTROL_NS) && strcmp(local, "QueryStateVariable") == 0) {
		d = &upnp_compat_query_state_variable; /* UDA 1.0 §3.3.1 */
	} else if (!service_ns_flavour(ns, ns_len, p->hosted, &p->eff, &p->req->args.version) ||
		   ns_len >= UPNP_SOAP_NS_MAX) {
		fail(p, 401);
		return;
	} else {
		d = upnp_action_lookup(local, strlen(local), p->eff);
		if (d == NULL && strcmp(local, upnp_compat_get_pm_number_of_entries.name) == 0 &&
		    (upnp_compat_get_pm_number_of_entries.flavours & UPNP_FLB(p->eff)))
			d = &upnp_compat_get_pm_number_of_entries;
	}
	if (d == NULL) {
		fail(p, 401);
		return;
	}
	if (p->sa_ns != NULL &&
	    (p->sa_ns_len != ns_len || memcmp(p->sa_ns, ns, ns_len) != 0 ||
	     p->sa_act_len != strlen(local) || memcmp(p->sa_act, local, p->sa_act_len) != 0)) {
		fail(p, 401); /* SOAPACTION header disagrees with the body */
		return;
	}
	p->req->def = d;
	memcpy(p->req->ns, ns, ns_len);
	p->req->ns[ns_len] = '\0';
}

static void start_arg(struct parser *p, const char *ns, size_t ns_len, const char *local)
{
	const struct upnp_action_def *d = p->req->def;

	/* Arguments are unqualified (UDA examples); some stacks qualify them with the
	 * service namespace (default xmlns on the action element). Accept both. */
	if (ns_len != 0 && !ns_is(ns, ns_len, p->req->ns)) {
		fail(p, 402);
		return;
	}
	for (int i = 0; i < UPNP_MAX_ARGS && d->in[i].name != NULL; i++) {
		if (strcmp(d->in[i].name, local) != 0)
			continue;
		if (p->seen_args & (1u << i)) {
			fail(p, 402); /* duplicated argument */
			return;
		}
		p->seen_args |= 1u << i;
		p->cur_arg = i;
		p->text_len = 0;
		p->text_overflow = false;
		return;
	}
	fail(p, 402); /* unknown argument */
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct parser *p = ud;
	const char *ns, *local;
	size_t ns_len;
	unsigned level = ++p->depth;

	(void)attrs;
	if (p->err)
		return;
	if (level > MAX_DEPTH) {
		fail(p, p->req->def ? 402 : 401);
		return;
	}
	split_name(name, &ns, &ns_len, &local);
	if (level == 1) {
		if (!ns_is(ns, ns_len, SOAP_ENV_NS) || strcmp(local, "Envelope") != 0)
			fail(p, 401);
		return;
	}
	if (level == 2) {
		if (ns_is(ns, ns_len, SOAP_ENV_NS) && strcmp(local, "Header") == 0 &&
		    !p->seen_header && !p->seen_body) {
			p->seen_header = p->in_header = true;
		} else if (ns_is(ns, ns_len, SOAP_ENV_NS) && strcmp(local, "Body") == 0 &&
			   !p->seen_body) {
			p->seen_body = true;
		} else {
			fail(p, 401);
		}
		return;
	}
	if (p->in_header)
		return; /* SOAP headers carry nothing UPnP 1.x uses */
	if (level == 3) {
		start_action(p, ns, ns_len, local);
		return;
	}
	if (level == 4) {
		start_arg(p, ns, ns_len, local);
		return;
	}
	fail(p, 402); /* element inside an argument */
}

static void XMLCALL on_chars(void *ud, const XML_Char *s, int len)
{
	struct parser *p = ud;

	if (p->err || p->cur_arg < 0 || p->depth != 4 || len <= 0)
		return;
	size_t n = (size_t)len;
	if (n > sizeof p->text - 1 - p->text_len) {
		n = sizeof p->text - 1 - p->text_len;
		p->text_overflow = true;
	}
	memcpy(p->text + p->text_len, s, n);
	p->text_len += n;
	p->text[p->text_len] = '\0';
}

static int store_arg(struct parser *p, const struct upnp_arg_def *a)
{
	struct upnp_args *args = &p->req->args;
	const struct upnp_var_def *v = a->var != NULL ? upnp_var_find(a->var, p->eff) : NULL;
	const char *s = p->text;
	size_t len = p->text_len;
	uint32_t u = 0;
	bool flag = false;

	if (v == NULL && a->var != NULL)
		return 402; /* table inconsistency; test_actions makes it impossible */
	if (p->text_overflow && a->field != UPNP_F_DESCRIPTION)
		return 402;
	switch (v != NULL ? v->type : UPNP_DT_STRING) {
	case UPNP_DT_UI2:
		if (!upnp_parse_uint(s, len, 65535, &u))
			return 402;
		break;
	case UPNP_DT_UI4:
		if (!upnp_parse_uint(s, len, UINT32_MAX, &u))
			return 402;
		break;
	case UPNP_DT_BOOLEAN:
		if (!upnp_parse_bool(s, len, &flag))
			return 402;
		break;
	case UPNP_DT_STRING:
		break;
	}
	switch (a->field) {
	case UPNP_F_REMOTE_HOST:
		/* "" = wildcard; otherwise an IPv4 or IPv6 address (no resolver on this path) */
		trim(&s, &len);
		if (len == 0)
			args->pm.remote_host[0] = '\0';
		else if (!parse_host(s, len, args->pm.remote_host, sizeof args->pm.remote_host))
			return 402;
		break;
	case UPNP_F_EXTERNAL_PORT: args->pm.external_port = (uint16_t)u; break;
	case UPNP_F_PROTOCOL:
		trim(&s, &len);
		/* allowedValueList TCP, UDP; lower case tolerated (docs/upnp.md) */
		if (len == 3 && strncasecmp(s, "TCP", 3) == 0)
			args->pm.protocol = UPNP_PROTO_TCP;
		else if (len == 3 && strncasecmp(s, "UDP", 3) == 0)
			args->pm.protocol = UPNP_PROTO_UDP;
		else
			return 402;
		break;
	case UPNP_F_INTERNAL_PORT: args->pm.internal_port = (uint16_t)u; break;
	case UPNP_F_INTERNAL_CLIENT:
		if (!parse_host(s, len, args->pm.internal_client, sizeof args->pm.internal_client))
			return 402;
		break;
	case UPNP_F_ENABLED: args->pm.enabled = flag; break;
	case UPNP_F_DESCRIPTION:
		copy_utf8_capped(args->pm.description, s, len, UPNP_DESC_MAX);
		break;
	case UPNP_F_LEASE: args->pm.lease_duration = u; break;
	case UPNP_F_INDEX: args->index = (uint16_t)u; break;
	case UPNP_F_START_PORT: args->start_port = (uint16_t)u; break;
	case UPNP_F_END_PORT: args->end_port = (uint16_t)u; break;
	case UPNP_F_MANAGE: args->manage = flag; break;
	case UPNP_F_NUMBER_OF_PORTS: args->number_of_ports = (uint16_t)u; break;
	case UPNP_F_TEXT:
	case UPNP_F_TEXT2: {
		char *dst = a->field == UPNP_F_TEXT ? args->text : args->text2;
		if (len > UPNP_HOST_MAX)
			return 402;
		memcpy(dst, s, len);
		dst[len] = '\0';
		break;
	}
	case UPNP_F_NUMBER: args->number = u; break;
	case UPNP_F_FLAG: args->flag = flag; break;
	default:
		return 402; /* an out-only field used as in argument */
	}
	return 0;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct parser *p = ud;
	unsigned level = p->depth--;

	(void)name;
	if (p->err)
		return;
	if (level == 2)
		p->in_header = false;
	if (level == 4 && p->cur_arg >= 0) {
		int rc = store_arg(p, &p->req->def->in[p->cur_arg]);
		p->cur_arg = -1;
		if (rc != 0)
			fail(p, rc);
	}
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	struct parser *p = ud;

	(void)name; (void)sysid; (void)pubid; (void)has_internal_subset;
	fail(p, p->req->def ? 402 : 401); /* no DTDs, no entity games */
}

/* SOAPACTION: "urn:...:service:Type:v#Action", quotes optional (UDA 1.1 §3.2.1). */
static int parse_soapaction(struct parser *p, const char *h)
{
	size_t len;
	const char *hash;

	if (h == NULL)
		return 0;
	len = strlen(h);
	trim(&h, &len);
	if (len >= 1 && h[0] == '"') {
		h++;
		len--;
	}
	if (len >= 1 && h[len - 1] == '"')
		len--;
	if (len == 0)
		return 0; /* SOAP 1.1 §6.1.1: "" = the request URI; treat as absent */
	hash = NULL;
	for (size_t i = len; i > 0 && hash == NULL; i--)
		if (h[i - 1] == '#')
			hash = h + i - 1;
	if (hash == NULL)
		return 401;
	p->sa_ns = h;
	p->sa_ns_len = (size_t)(hash - h);
	p->sa_act = hash + 1;
	p->sa_act_len = len - p->sa_ns_len - 1;
	return 0;
}

/* Syntax-level rules that need no state (issue 4 item 5). 724-727 (IGD:1) are
 * capabilities of the NAT, decided by the application, never here. */
static int check_rules(const struct parser *p)
{
	const struct upnp_args *a = &p->req->args;

	switch (p->req->def->action) {
	case UPNP_ACT_ADD_PORT_MAPPING:
		if (a->pm.external_port == 0)
			return 716; /* WildCardNotPermittedInExtPort */
		if (a->pm.internal_port == 0)
			/* WANIPConnection:2 defines 732; v1 services: out of InternalPort's
			 * range 1..65535 (seed 000 table 1) -> 402 */
			return p->hosted == UPNP_FL_IP2 ? 732 : 402;
		break;
	case UPNP_ACT_ADD_ANY_PORT_MAPPING:
		if (a->pm.internal_port == 0)
			return 732;
		break;
	case UPNP_ACT_DELETE_PORT_MAPPING_RANGE:
	case UPNP_ACT_GET_LIST_OF_PORT_MAPPINGS:
		if (a->start_port > a->end_port)
			return 733; /* InconsistentParameters */
		break;
	default:
		break;
	}
	return 0;
}

/* One expat pass. *xml_error tells a well-formedness error from a semantic one. */
static int parse_once(const char *body, size_t len, const char *soapaction,
		      enum upnp_flavour hosted, struct upnp_soap_req *req, bool *xml_error)
{
	struct parser p;
	int rc;

	*xml_error = false;
	memset(req, 0, sizeof *req);
	memset(&p, 0, sizeof p);
	p.req = req;
	p.hosted = p.eff = hosted;
	p.cur_arg = -1;
	if (upnp_flavour_get(hosted) == NULL)
		return 401;
	req->args.service = upnp_flavour_get(hosted)->service;
	rc = parse_soapaction(&p, soapaction);
	if (rc != 0)
		return rc;
	if (len > (size_t)INT32_MAX)
		return 402;
	p.xp = XML_ParserCreateNS(NULL, NS_SEP);
	if (p.xp == NULL)
		return 501;
	XML_SetUserData(p.xp, &p);
	XML_SetElementHandler(p.xp, on_start, on_end);
	XML_SetCharacterDataHandler(p.xp, on_chars);
	XML_SetStartDoctypeDeclHandler(p.xp, on_doctype);
	if (XML_Parse(p.xp, body, (int)len, XML_TRUE) == XML_STATUS_ERROR && p.err == 0) {
		p.err = req->def ? 402 : 401;
		*xml_error = true;
	}
	XML_ParserFree(p.xp);
	if (p.err != 0)
		return p.err;
	if (!p.seen_body || req->def == NULL)
		return 401;
	size_t n_in = upnp_action_n_in(req->def);
	if (p.seen_args != (n_in ? (1u << n_in) - 1 : 0))
		return 402; /* missing argument */
	return check_rules(&p);
}

/* Is s (at '&') the start of a predefined entity or character reference? */
static bool is_reference(const char *s, const char *end)
{
	static const char *const names[] = { "amp;", "lt;", "gt;", "quot;", "apos;" };
	size_t left = (size_t)(end - s) - 1;

	s++;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (left >= strlen(names[i]) && memcmp(s, names[i], strlen(names[i])) == 0)
			return true;
	if (left >= 3 && s[0] == '#') {
		size_t i = 1;
		bool hex = s[1] == 'x';
		if (hex)
			i++;
		size_t start = i;
		while (i < left && (hex ? isxdigit((unsigned char)s[i]) : isdigit((unsigned char)s[i])))
			i++;
		return i > start && i < left && s[i] == ';';
	}
	return false;
}

/*
 * miniupnpc (upnpc, python3-miniupnpc) and some other clients put argument values into
 * the envelope without escaping them: a description "a&b<c>" arrives raw and the request
 * is not XML. miniupnpd's lenient parser accepts it, so LAN programs rely on it. When a
 * request is not well-formed, the text between "<NewX>" and the first "</NewX>" (optional
 * prefix, no attributes) is escaped and the request parsed once more. Well-formed requests
 * never go through here. Returns the repaired copy (caller frees) or NULL if nothing to do.
 */
static char *repair_args(const char *body, size_t len, size_t *out_len)
{
	struct upnp_buf b;
	const char *p = body, *end = body + len;
	bool changed = false;

	upnp_buf_init(&b);
	b.limit = len * 5 + 64;
	while (p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p));
		if (lt == NULL)
			break;
		const char *gt = memchr(lt, '>', (size_t)(end - lt));
		if (gt == NULL)
			break;
		/* open tag "<[prefix:]NewName>" */
		const char *name = lt + 1, *colon = memchr(name, ':', (size_t)(gt - name));
		const char *local = colon != NULL ? colon + 1 : name;
		bool is_arg = (size_t)(gt - local) > 3 && memcmp(local, "New", 3) == 0;
		for (const char *q = name; is_arg && q < gt; q++)
			if (!(isalnum((unsigned char)*q) || *q == '_' || *q == ':' || *q == '-' ||
			      *q == '.'))
				is_arg = false;
		upnp_buf_addn(&b, p, (size_t)(gt + 1 - p));
		p = gt + 1;
		if (!is_arg)
			continue;
		/* find "</" name ">" */
		size_t nlen = (size_t)(gt - name);
		const char *close = NULL;
		for (const char *q = p; q + nlen + 3 <= end; q++) {
			if (q[0] == '<' && q[1] == '/' && memcmp(q + 2, name, nlen) == 0 &&
			    q[2 + nlen] == '>') {
				close = q;
				break;
			}
		}
		if (close == NULL)
			break; /* no repair past an unclosed argument: keeps the scan linear */
		for (const char *q = p; q < close; q++) {
			if (*q == '<') {
				upnp_buf_add(&b, "&lt;");
				changed = true;
			} else if (*q == '>') {
				upnp_buf_add(&b, "&gt;");
			} else if (*q == '&' && !is_reference(q, close)) {
				upnp_buf_add(&b, "&amp;");
				changed = true;
			} else {
				upnp_buf_addn(&b, q, 1);
			}
		}
		p = close;
	}
	upnp_buf_addn(&b, p, (size_t)(end - p));
	if (!changed || b.failed) {
		upnp_buf_free(&b);
		return NULL;
	}
	*out_len = b.len;
	return b.p;
}

int upnp_soap_parse(const char *body, size_t len, const char *soapaction,
		    enum upnp_flavour hosted, struct upnp_soap_req *req)
{
	bool xml_error;
	int rc = parse_once(body, len, soapaction, hosted, req, &xml_error);

	if (rc != 0 && xml_error) {
		size_t rlen;
		char *fixed = repair_args(body, len, &rlen);
		if (fixed != NULL) {
			struct upnp_soap_req again;
			int rc2 = parse_once(fixed, rlen, soapaction, hosted, &again, &xml_error);
			free(fixed);
			if (rc2 == 0 || !xml_error) {
				*req = again;
				rc = rc2;
			}
		}
	}
	return rc;
}

/* ------------------------------------------------------------------ output */

static const char *proto_name(enum upnp_proto pr)
{
	return pr == UPNP_PROTO_TCP ? "TCP" : pr == UPNP_PROTO_UDP ? "UDP" : "";
}

static void env_open(struct upnp_buf *b)
{
	upnp_buf_add(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"
		     "<s:Envelope xmlns:s=\"" SOAP_ENV_NS "\" s:encodingStyle=\"" SOAP_ENC_NS "\">"
		     "<s:Body>");
}

static void env_close(struct upnp_buf *b)
{
	upnp_buf_add(b, "</s:Body></s:Envelope>\r\n");
}

static void elem_u(struct upnp_buf *b, const char *name, unsigned v)
{
	upnp_buf_printf(b, "<%s>%u</%s>", name, v, name);
}

static void out_arg(struct upnp_buf *b, const struct upnp_arg_def *a, const struct upnp_reply *r)
{
	const char *n = a->name;

	switch (a->field) {
	case UPNP_F_REMOTE_HOST: upnp_buf_elem(b, n, r->pm.remote_host); break;
	case UPNP_F_EXTERNAL_PORT: elem_u(b, n, r->pm.external_port); break;
	case UPNP_F_PROTOCOL: upnp_buf_elem(b, n, proto_name(r->pm.protocol)); break;
	case UPNP_F_INTERNAL_PORT: elem_u(b, n, r->pm.internal_port); break;
	case UPNP_F_INTERNAL_CLIENT: upnp_buf_elem(b, n, r->pm.internal_client); break;
	case UPNP_F_ENABLED: elem_u(b, n, r->pm.enabled); break;
	case UPNP_F_DESCRIPTION: upnp_buf_elem(b, n, r->pm.description); break;
	case UPNP_F_LEASE: elem_u(b, n, r->pm.lease_duration); break;
	case UPNP_F_RESERVED_PORT: elem_u(b, n, r->reserved_port); break;
	case UPNP_F_EXTERNAL_IP: upnp_buf_elem(b, n, r->external_ip); break;
	case UPNP_F_CONNECTION_STATUS: upnp_buf_elem(b, n, r->connection_status); break;
	case UPNP_F_LAST_CONNECTION_ERROR: upnp_buf_elem(b, n, r->last_connection_error); break;
	case UPNP_F_UPTIME: elem_u(b, n, r->uptime); break;
	case UPNP_F_CONNECTION_TYPE: upnp_buf_elem(b, n, r->connection_type); break;
	case UPNP_F_POSSIBLE_CONNECTION_TYPES:
		upnp_buf_elem(b, n, r->possible_connection_types);
		break;
	case UPNP_F_RSIP_AVAILABLE: elem_u(b, n, r->rsip_available); break;
	case UPNP_F_NAT_ENABLED: elem_u(b, n, r->nat_enabled); break;
	case UPNP_F_NUMBER: elem_u(b, n, r->number); break;
	case UPNP_F_TEXT: upnp_buf_elem(b, n, r->text); break;
	case UPNP_F_TEXT2: upnp_buf_elem(b, n, r->text2); break;
	case UPNP_F_FLAG: elem_u(b, n, r->flag); break;
	case UPNP_F_WAN_ACCESS_TYPE: upnp_buf_elem(b, n, r->wan_access_type); break;
	case UPNP_F_PHYSICAL_LINK_STATUS: upnp_buf_elem(b, n, r->physical_link_status); break;
	case UPNP_F_UP_MAX_BITRATE: elem_u(b, n, r->up_max_bitrate); break;
	case UPNP_F_DOWN_MAX_BITRATE: elem_u(b, n, r->down_max_bitrate); break;
	case UPNP_F_PORT_LISTING: {
		struct upnp_buf lst;
		upnp_buf_init(&lst);
		upnp_soap_port_listing(&lst, r->list, r->n_list);
		if (lst.failed) {
			b->failed = true;
		} else {
			/* The document travels as the text of NewPortListing. In a CDATA section,
			 * like miniupnpd: equal to entity-escaped text for an XML parser, and the
			 * only form miniupnpc's parser (upnpc -L) decodes. "]]>" cannot occur in
			 * it (the writer escapes '>' in text) but is split anyway. */
			upnp_buf_printf(b, "<%s><![CDATA[", n);
			for (const char *q = lst.p, *e; *q != '\0'; q = e + 3) {
				e = strstr(q, "]]>");
				if (e == NULL) {
					upnp_buf_add(b, q);
					break;
				}
				upnp_buf_addn(b, q, (size_t)(e - q));
				upnp_buf_add(b, "]]]]><![CDATA[>");
			}
			upnp_buf_printf(b, "]]></%s>", n);
		}
		upnp_buf_free(&lst);
		break;
	}
	default:
		upnp_buf_elem(b, n, "");
		break;
	}
}

void upnp_soap_response(struct upnp_buf *b, const struct upnp_action_def *d, const char *ns,
			const struct upnp_reply *r)
{
	static const struct upnp_reply empty;

	if (r == NULL)
		r = &empty;
	env_open(b);
	upnp_buf_printf(b, "<u:%sResponse xmlns:u=\"", d->name);
	upnp_buf_esc(b, ns);
	upnp_buf_add(b, "\">");
	for (size_t i = 0; i < UPNP_MAX_ARGS && d->out[i].name != NULL; i++)
		out_arg(b, &d->out[i], r);
	upnp_buf_printf(b, "</u:%sResponse>", d->name);
	env_close(b);
}

/* UDA 1.1 §3.2.2: HTTP 500, s:Client, UPnPError with errorCode and errorDescription. */
void upnp_soap_fault(struct upnp_buf *b, int code)
{
	env_open(b);
	upnp_buf_add(b, "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>"
		     "<detail><UPnPError xmlns=\"" UPNP_CONTROL_NS "\">");
	upnp_buf_printf(b, "<errorCode>%d</errorCode>", code);
	upnp_buf_elem(b, "errorDescription", upnp_error_description_or(code));
	upnp_buf_add(b, "</UPnPError></detail></s:Fault>");
	env_close(b);
}

/* WANIPConnection:2 §2.6 A_ARG_TYPE_PortListing, schema
 * urn:schemas-upnp-org:gw:WANIPConnection (WANIPConnection-v2.xsd). */
void upnp_soap_port_listing(struct upnp_buf *b, const struct upnp_pm_entry *list, size_t n)
{
	upnp_buf_add(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		     "<p:PortMappingList xmlns:p=\"urn:schemas-upnp-org:gw:WANIPConnection\" "
		     "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
		     "xsi:schemaLocation=\"urn:schemas-upnp-org:gw:WANIPConnection "
		     "http://www.upnp.org/schemas/gw/WANIPConnection-v2.xsd\">\n");
	for (size_t i = 0; list != NULL && i < n; i++) {
		const struct upnp_pm_entry *e = &list[i];
		upnp_buf_add(b, "<p:PortMappingEntry>\n");
		upnp_buf_elem(b, "p:NewRemoteHost", e->remote_host);
		upnp_buf_printf(b, "\n<p:NewExternalPort>%u</p:NewExternalPort>\n",
				(unsigned)e->external_port);
		upnp_buf_elem(b, "p:NewProtocol", proto_name(e->protocol));
		upnp_buf_printf(b, "\n<p:NewInternalPort>%u</p:NewInternalPort>\n",
				(unsigned)e->internal_port);
		upnp_buf_elem(b, "p:NewInternalClient", e->internal_client);
		upnp_buf_printf(b, "\n<p:NewEnabled>%u</p:NewEnabled>\n", (unsigned)e->enabled);
		upnp_buf_elem(b, "p:NewDescription", e->description);
		upnp_buf_printf(b, "\n<p:NewLeaseTime>%u</p:NewLeaseTime>\n",
				(unsigned)e->lease_duration);
		upnp_buf_add(b, "</p:PortMappingEntry>\n");
	}
	upnp_buf_add(b, "</p:PortMappingList>\n");
}
