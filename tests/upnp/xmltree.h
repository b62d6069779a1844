/* xmltree.h - a tiny expat DOM for the upnp/ tests: parse a document (namespace-aware,
 * names "URI localname" or "localname"), walk children, read text and attributes. */
#ifndef IWFD_TESTS_UPNP_XMLTREE_H
#define IWFD_TESTS_UPNP_XMLTREE_H

#include <expat.h>
#include <stdlib.h>
#include <string.h>

struct xnode {
	char *name;
	char *text;
	size_t tlen;
	char **attrs; /* name, value, ..., NULL */
	struct xnode *parent, *child, *last, *next;
};

struct xbuild {
	struct xnode *root, *cur;
	int oom;
};

static inline char *x_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static void XMLCALL x_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct xbuild *b = ud;
	struct xnode *n = calloc(1, sizeof *n);
	size_t na = 0;

	if (n == NULL) {
		b->oom = 1;
		return;
	}
	n->name = x_strdup(name);
	n->text = x_strdup("");
	while (atts[na] != NULL)
		na++;
	n->attrs = calloc(na + 1, sizeof *n->attrs);
	for (size_t i = 0; i < na && n->attrs != NULL; i++)
		n->attrs[i] = x_strdup(atts[i]);
	n->parent = b->cur;
	if (b->cur == NULL) {
		b->root = n;
	} else {
		if (b->cur->last != NULL)
			b->cur->last->next = n;
		else
			b->cur->child = n;
		b->cur->last = n;
	}
	b->cur = n;
}

static void XMLCALL x_end(void *ud, const XML_Char *name)
{
	struct xbuild *b = ud;
	(void)name;
	if (b->cur != NULL)
		b->cur = b->cur->parent;
}

static void XMLCALL x_chars(void *ud, const XML_Char *s, int len)
{
	struct xbuild *b = ud;
	struct xnode *n = b->cur;
	if (n == NULL || len <= 0)
		return;
	char *t = realloc(n->text, n->tlen + (size_t)len + 1);
	if (t == NULL) {
		b->oom = 1;
		return;
	}
	memcpy(t + n->tlen, s, (size_t)len);
	n->tlen += (size_t)len;
	t[n->tlen] = '\0';
	n->text = t;
}

static inline void xnode_free(struct xnode *n)
{
	while (n != NULL) {
		struct xnode *next = n->next;
		xnode_free(n->child);
		free(n->name);
		free(n->text);
		for (size_t i = 0; n->attrs != NULL && n->attrs[i] != NULL; i++)
			free(n->attrs[i]);
		free(n->attrs);
		free(n);
		n = next;
	}
}

/* NULL when not well-formed. */
static inline struct xnode *xml_parse(const char *buf, size_t len)
{
	struct xbuild b = { NULL, NULL, 0 };
	XML_Parser p = XML_ParserCreateNS(NULL, ' ');
	int ok;

	XML_SetUserData(p, &b);
	XML_SetElementHandler(p, x_start, x_end);
	XML_SetCharacterDataHandler(p, x_chars);
	ok = XML_Parse(p, buf, (int)len, XML_TRUE) == XML_STATUS_OK;
	XML_ParserFree(p);
	if (!ok || b.oom) {
		xnode_free(b.root);
		return NULL;
	}
	return b.root;
}

/* Local part of a node name. */
static inline const char *xnode_local(const struct xnode *n)
{
	const char *sp = strrchr(n->name, ' ');
	return sp != NULL ? sp + 1 : n->name;
}

/* First child whose local name is `local`. */
static inline struct xnode *xchild(const struct xnode *n, const char *local)
{
	for (struct xnode *c = n != NULL ? n->child : NULL; c != NULL; c = c->next)
		if (strcmp(xnode_local(c), local) == 0)
			return c;
	return NULL;
}

static inline const char *xtext(const struct xnode *n)
{
	return n != NULL ? n->text : NULL;
}

static inline const char *xattr(const struct xnode *n, const char *name)
{
	for (size_t i = 0; n != NULL && n->attrs != NULL && n->attrs[i] != NULL; i += 2)
		if (strcmp(n->attrs[i], name) == 0)
			return n->attrs[i + 1];
	return NULL;
}

#endif
