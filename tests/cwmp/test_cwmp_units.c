/* Unit tests of iwf-cwmp's pure parts: MD5 (RFC 1321 vectors), HTTP digest (RFC 2617
 * §3.5 example), the connection-request digest check (replay, wrong password, expiry),
 * the bounded XML reader, the in-memory tree (all-or-nothing Set, NextLevel, objects). */
#include "auth.h"
#include "dm.h"
#include "soap.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define CHECK(c)                                                          \
	do {                                                                  \
		if (!(c)) {                                                       \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); \
			failures++;                                                   \
		}                                                                 \
	} while (0)

static void test_md5(void)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		{ "", "d41d8cd98f00b204e9800998ecf8427e" },
		{ "a", "0cc175b9c0f1b6a831c399e269772661" },
		{ "abc", "900150983cd24fb0d6963f7d28e17f72" },
		{ "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
		{ "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
		  "57edf4a22be3c955ac49da2e2107b67a" },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char out[33];
		md5_hex(v[i].in, strlen(v[i].in), out);
		CHECK(!strcmp(out, v[i].out));
	}
}

static void test_digest_client(void)
{
	/* RFC 2617 §3.5 */
	char out[1024];
	CHECK(auth_client_answer("Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", "
	                         "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
	                         "Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1, "0a4f113b", out, sizeof out));
	CHECK(strstr(out, "response=\"6629fae49393a05397450978507c4ef1\"") != NULL);
	CHECK(strstr(out, "nc=00000001") != NULL && strstr(out, "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
	CHECK(auth_client_answer("Basic realm=\"x\"", "Aladdin", "open sesame", "POST", "/", 1, "c", out, sizeof out));
	CHECK(!strcmp(out, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
	CHECK(!auth_client_answer("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256", "u", "p", "GET", "/", 1, "c", out,
	                          sizeof out));
	CHECK(!auth_client_answer("Negotiate", "u", "p", "GET", "/", 1, "c", out, sizeof out));
	CHECK(!auth_client_answer("Digest realm=\"r\", nonce=\"n\"", "u", "p", "GET", "/", 1, "c", out, 20));
}

static void test_digest_server(void)
{
	struct auth_server s = { .realm = "iwf-cwmp", .user = "acs", .pass = "secret" };
	uint8_t r[16] = { 1, 2, 3 };
	char ch[256], ans[1024];
	auth_server_challenge(&s, 1000, r, ch, sizeof ch);
	CHECK(auth_client_answer(ch, "acs", "secret", "GET", "/cr-1", 1, "abc", ans, sizeof ans));
	CHECK(auth_server_check(&s, ans, "GET", 2000));
	CHECK(!auth_server_check(&s, ans, "GET", 2000)); /* the same nc again: a replay */
	CHECK(auth_client_answer(ch, "acs", "secret", "GET", "/cr-1", 2, "abd", ans, sizeof ans));
	CHECK(!auth_server_check(&s, ans, "POST", 2000)); /* another method */
	CHECK(auth_server_check(&s, ans, "GET", 2000));
	CHECK(auth_client_answer(ch, "acs", "wrong", "GET", "/cr-1", 3, "abe", ans, sizeof ans));
	CHECK(!auth_server_check(&s, ans, "GET", 2000));
	CHECK(auth_client_answer(ch, "acs", "secret", "GET", "/cr-1", 4, "abf", ans, sizeof ans));
	CHECK(!auth_server_check(&s, ans, "GET", 1000 + 61000)); /* the nonce expired */
	CHECK(!auth_server_check(&s, "Basic YWNzOnNlY3JldA==", "GET", 2000));
	CHECK(!auth_server_check(&s, "Digest username=\"acs\"", "GET", 2000));
}

static void test_xml(void)
{
	const char *doc = "<?xml version=\"1.0\"?><e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\" "
	                  "xmlns:x=\"http://www.w3.org/2001/XMLSchema-instance\"><e:Body><a><v x:type=\"xsd:int\"> 5 "
	                  "</v><w>&lt;&amp;</w></a></e:Body></e:Envelope>";
	struct xnode *n = xml_parse(doc, strlen(doc));
	CHECK(n && !strcmp(n->name, "Envelope") && n->ns && !strcmp(n->ns, "http://schemas.xmlsoap.org/soap/envelope/"));
	struct xnode *a = xnode_child(xnode_child(n, "Body"), "a");
	CHECK(a && !strcmp(xnode_child(a, "v")->text, "5") && !strcmp(xnode_child(a, "v")->xtype, "xsd:int"));
	CHECK(!strcmp(xnode_child(a, "w")->text, "<&"));
	xnode_free(n);
	CHECK(!xml_parse("<a><b></a>", 10));
	const char *dtd = "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>";
	CHECK(!xml_parse(dtd, strlen(dtd)));
	/* nesting beyond SOAP_MAX_DEPTH */
	char deep[2048] = "";
	for (int i = 0; i < 40; i++)
		strcat(deep, "<d>");
	for (int i = 0; i < 40; i++)
		strcat(deep, "</d>");
	CHECK(!xml_parse(deep, strlen(deep)));
	/* more elements than SOAP_MAX_NODES */
	size_t cap = (SOAP_MAX_NODES + 10) * 4 + 16;
	char *many = malloc(cap);
	strcpy(many, "<r>");
	for (int i = 0; i < SOAP_MAX_NODES + 5; i++)
		strcat(many, "<e/>");
	strcat(many, "</r>");
	CHECK(!xml_parse(many, strlen(many)));
	free(many);
	struct evbuffer *b = evbuffer_new();
	xml_esc(b, "a<b>&\"'\x01z");
	size_t len = evbuffer_get_length(b);
	char out[64] = "";
	evbuffer_remove(b, out, len < sizeof out - 1 ? len : sizeof out - 1);
	CHECK(!strcmp(out, "a&lt;b&gt;&amp;&quot;&apos;z"));
	evbuffer_free(b);
}

static void test_mem(void)
{
	struct dm_backend *b = dm_static_new();
	struct dm_list l = { 0 };
	const char *map = "Device.PCP.Client.1.Server.1.InboundMapping.";
	CHECK(b->ops->get_names(b, "Device.", true, &l) == DM_OK && l.n == 2);
	dm_list_clear(&l);
	CHECK(b->ops->get_names(b, "Device.DeviceInfo.OUI", true, &l) == DM_INVALID_ARGUMENTS);
	CHECK(b->ops->get_names(b, "Device.X.", false, &l) == DM_INVALID_NAME);
	unsigned inst = 0;
	CHECK(b->ops->add_object(b, map, &inst) == DM_OK && inst == 1);
	CHECK(b->ops->add_object(b, "Device.DeviceInfo.", &inst) == DM_INVALID_NAME);
	struct dm_set sets[] = {
		{ "Device.PCP.Client.1.Server.1.InboundMapping.1.InternalPort", "80", DM_UINT, true },
		{ "Device.PCP.Client.1.Server.1.InboundMapping.1.Enable", "yes", DM_BOOL, true },
	};
	struct dm_list faults = { 0 };
	CHECK(b->ops->set_values(b, sets, 2, &faults) == DM_INVALID_ARGUMENTS);
	CHECK(faults.n == 1 && faults.v[0].fault == DM_INVALID_VALUE);
	dm_list_clear(&faults);
	const char *p = sets[0].name;
	CHECK(b->ops->get_values(b, &p, 1, &l) == DM_OK && l.n == 1 && !strcmp(l.v[0].value, "0"));
	dm_list_clear(&l);
	sets[1].value = "true";
	CHECK(b->ops->set_values(b, sets, 2, NULL) == DM_OK);
	p = sets[1].name;
	CHECK(b->ops->get_values(b, &p, 1, &l) == DM_OK && !strcmp(l.v[0].value, "1"));
	dm_list_clear(&l);
	CHECK(b->ops->delete_object(b, "Device.PCP.Client.1.Server.1.InboundMapping.1.") == DM_OK);
	CHECK(b->ops->delete_object(b, "Device.PCP.Client.1.") == DM_INVALID_NAME); /* a fixed instance */
	CHECK(b->ops->add_object(b, map, &inst) == DM_OK && inst == 2); /* 1 is not given again */
	CHECK(b->ops->delete_object(b, "Device.PCP.Client.1.Server.1.InboundMapping.2.") == DM_OK);
	CHECK(b->ops->delete_object(b, "Device.DeviceInfo.") == DM_INVALID_NAME);
	p = "Device.PCP.Client.1.Server.1.InboundMappingNumberOfEntries";
	CHECK(b->ops->get_values(b, &p, 1, &l) == DM_OK && l.n == 1 && !strcmp(l.v[0].value, "0"));
	dm_list_clear(&l);
	dm_free(b);
	char canon[32];
	CHECK(dm_value_check(DM_INT, "-2147483648", canon) == DM_OK);
	CHECK(dm_value_check(DM_INT, "2147483648", canon) == DM_INVALID_VALUE);
	CHECK(dm_value_check(DM_UINT, "4294967295", canon) == DM_OK);
	CHECK(dm_value_check(DM_UINT, "-1", canon) == DM_INVALID_VALUE);
	CHECK(dm_value_check(DM_DATETIME, "2024-01-01T00:00:00Z", canon) == DM_OK);
	CHECK(dm_value_check(DM_BOOL, "false", canon) == DM_OK && !strcmp(canon, "0"));
}

int main(void)
{
	test_md5();
	test_digest_client();
	test_digest_server();
	test_xml();
	test_mem();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures ? 1 : 0;
}
