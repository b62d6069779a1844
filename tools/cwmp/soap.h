/* soap.h - the SOAP side of iwf-cwmp: a bounded expat reader into a small element tree,
 * and an escaping writer. */
#ifndef IWF_CWMP_SOAP_H
#define IWF_CWMP_SOAP_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

/* Bounds on what an ACS can make us hold (the HTTP body is bounded separately). */
#define SOAP_MAX_NODES 8192
#define SOAP_MAX_DEPTH 24
#define SOAP_MAX_TEXT 65536

struct xnode {
	char *name;  /* local name (namespace stripped) */
	char *ns;    /* namespace URI or NULL */
	char *text;  /* character data, trimmed; never NULL */
	char *xtype; /* the xsi:type attribute or NULL */
	struct xnode *child, *next, *parent;
};

/* Parses one XML document. Returns the root element (caller frees with xnode_free) or NULL
 * on malformed input or a bound exceeded. */
struct xnode *xml_parse(const char *buf, size_t len);
void xnode_free(struct xnode *n);
/* The first child named name (local name), or NULL. Borrowed. */
struct xnode *xnode_child(const struct xnode *n, const char *name);
size_t xnode_count(const struct xnode *n);

/* Appends s with &, <, >, ", ' escaped. */
void xml_esc(struct evbuffer *b, const char *s);

#endif
