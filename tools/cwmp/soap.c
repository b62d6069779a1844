/* soap.c - the bounded XML reader (expat, namespace-aware) and the escaping writer. */
#include "soap.h"

#include <event2/buffer.h>
#include <expat.h>
#include <stdlib.h>
#include <string.h>

#define XSI_NS "http://www.w3.org/2001/XMLSchema-instance"

struct pstate {
	XML_Parser p;
	struct xnode *root, *cur;
	size_t nodes, depth, text;
	bool failed;
};

void xnode_free(struct xnode *n)
{
	while (n) {
		struct xnode *next = n->next;
		xnode_free(n->child);
		free(n->name);
		free(n->ns);
		free(n->text);
		free(n->xtype);
		free(n);
		n = next;
	}
}

static void fail(struct pstate *s)
{
	s->failed = true;
	XML_StopParser(s->p, XML_FALSE);
}

/* expat hands "URI<sep>local" with XML_ParserCreateNS(sep = '\x01'). */
static char *split_ns(const char *qname, char **ns)
{
	const char *sep = strchr(qname, '\x01');
	*ns = sep ? strndup(qname, (size_t)(sep - qname)) : NULL;
	return strdup(sep ? sep + 1 : qname);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct pstate *s = ud;
	if (s->failed)
		return;
	if (++s->nodes > SOAP_MAX_NODES || ++s->depth > SOAP_MAX_DEPTH) {
		fail(s);
		return;
	}
	struct xnode *n = calloc(1, sizeof *n);
	if (!n) {
		fail(s);
		return;
	}
	n->name = split_ns(name, &n->ns);
	n->text = strdup("");
	for (size_t i = 0; attrs[i]; i += 2) {
		char *ans, *local = split_ns(attrs[i], &ans);
		if (local && !strcmp(local, "type") && ans && !strcmp(ans, XSI_NS) && !n->xtype)
			n->xtype = strdup(attrs[i + 1]);
		free(local);
		free(ans);
	}
	n->parent = s->cur;
	if (s->cur) {
		struct xnode **pp = &s->cur->child;
		while (*pp)
			pp = &(*pp)->next;
		*pp = n;
	} else if (!s->root) {
		s->root = n;
	} else {
		xnode_free(n);
		fail(s);
		return;
	}
	s->cur = n;
	if (!n->name || !n->text)
		fail(s);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct pstate *s = ud;
	if (s->failed || !s->cur)
		return;
	/* trim the text */
	char *t = s->cur->text;
	size_t len = strlen(t), a = 0;
	while (a < len && strchr(" \t\r\n", t[a]))
		a++;
	while (len > a && strchr(" \t\r\n", t[len - 1]))
		len--;
	memmove(t, t + a, len - a);
	t[len - a] = '\0';
	s->cur = s->cur->parent;
	s->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *txt, int len)
{
	struct pstate *s = ud;
	if (s->failed || !s->cur || len <= 0)
		return;
	s->text += (size_t)len;
	if (s->text > SOAP_MAX_TEXT) {
		fail(s);
		return;
	}
	size_t old = strlen(s->cur->text);
	char *t = realloc(s->cur->text, old + (size_t)len + 1);
	if (!t) {
		fail(s);
		return;
	}
	memcpy(t + old, txt, (size_t)len);
	t[old + (size_t)len] = '\0';
	s->cur->text = t;
}

/* No DTDs: an internal subset could otherwise declare entities (billion laughs). */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal)
{
	fail(ud);
}

struct xnode *xml_parse(const char *buf, size_t len)
{
	struct pstate s = { 0 };
	s.p = XML_ParserCreateNS(NULL, '\x01');
	if (!s.p)
		return NULL;
	XML_SetUserData(s.p, &s);
	XML_SetElementHandler(s.p, on_start, on_end);
	XML_SetCharacterDataHandler(s.p, on_text);
	XML_SetStartDoctypeDeclHandler(s.p, on_doctype);
	if (XML_Parse(s.p, buf, (int)len, XML_TRUE) != XML_STATUS_OK || s.failed || s.cur) {
		xnode_free(s.root);
		s.root = NULL;
	}
	XML_ParserFree(s.p);
	return s.root;
}

struct xnode *xnode_child(const struct xnode *n, const char *name)
{
	for (struct xnode *c = n ? n->child : NULL; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

size_t xnode_count(const struct xnode *n)
{
	size_t k = 0;
	for (struct xnode *c = n ? n->child : NULL; c; c = c->next)
		k++;
	return k;
}

void xml_esc(struct evbuffer *b, const char *s)
{
	const char *run = s;
	for (; *s; s++) {
		const char *rep = NULL;
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		default:
			/* C0 controls other than TAB, LF, CR cannot appear in XML 1.0: dropped */
			if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r')
				rep = "";
			break;
		}
		if (rep) {
			evbuffer_add(b, run, (size_t)(s - run));
			evbuffer_add(b, rep, strlen(rep));
			run = s + 1;
		}
	}
	evbuffer_add(b, run, (size_t)(s - run));
}
