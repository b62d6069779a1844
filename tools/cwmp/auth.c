/* auth.c - MD5 (RFC 1321), base64, and HTTP basic/digest authentication (RFC 2617). */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- MD5, RFC 1321 -------------------------------------------------------------------- */

struct md5 {
	uint32_t h[4];
	uint64_t len;
	uint8_t buf[64];
};

static const uint32_t md5_k[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};
static const uint8_t md5_r[64] = {
	7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
	4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static void md5_block(struct md5 *c, const uint8_t *p)
{
	uint32_t w[16], a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
		       (uint32_t)p[4 * i + 3] << 24;
	for (int i = 0; i < 64; i++) {
		uint32_t f;
		int g;
		if (i < 16) {
			f = (b & cc) | (~b & d);
			g = i;
		} else if (i < 32) {
			f = (d & b) | (~d & cc);
			g = (5 * i + 1) % 16;
		} else if (i < 48) {
			f = b ^ cc ^ d;
			g = (3 * i + 5) % 16;
		} else {
			f = cc ^ (b | ~d);
			g = (7 * i) % 16;
		}
		uint32_t t = d;
		d = cc;
		cc = b;
		uint32_t x = a + f + md5_k[i] + w[g];
		b = b + (x << md5_r[i] | x >> (32 - md5_r[i]));
		a = t;
	}
	c->h[0] += a;
	c->h[1] += b;
	c->h[2] += cc;
	c->h[3] += d;
}

static void md5_update(struct md5 *c, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t used = c->len % 64;
	c->len += len;
	while (len) {
		size_t take = 64 - used < len ? 64 - used : len;
		memcpy(c->buf + used, p, take);
		used += take;
		p += take;
		len -= take;
		if (used == 64) {
			md5_block(c, c->buf);
			used = 0;
		}
	}
}

void md5_hex(const void *data, size_t len, char out[33])
{
	struct md5 c = { { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476 }, 0, { 0 } };
	md5_update(&c, data, len);
	uint64_t bits = c.len * 8;
	uint8_t pad = 0x80, zero = 0, lenb[8];
	md5_update(&c, &pad, 1);
	while (c.len % 64 != 56)
		md5_update(&c, &zero, 1);
	for (int i = 0; i < 8; i++)
		lenb[i] = (uint8_t)(bits >> (8 * i));
	md5_update(&c, lenb, 8);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", (unsigned)(c.h[i / 4] >> (8 * (i % 4))) & 0xff);
}

/* MD5 over "a:b:c..." of up to 6 parts. */
static void md5_join(char out[33], int n, const char *const parts[])
{
	char buf[2048];
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		int w = snprintf(buf + off, sizeof buf - off, "%s%s", i ? ":" : "", parts[i]);
		if (w < 0 || (size_t)w >= sizeof buf - off) {
			memset(out, '0', 32);
			out[32] = '\0';
			return;
		}
		off += (size_t)w;
	}
	md5_hex(buf, off, out);
}

static void base64(const char *in, size_t len, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *p = (const uint8_t *)in;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

/* Finds key in an auth-param list (key=token or key="quoted") into out. */
static bool param(const char *list, const char *key, char *out, size_t outlen)
{
	const char *p = list;
	size_t klen = strlen(key);
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		const char *k = p;
		while (*p && *p != '=' && *p != ',' && *p != ' ')
			p++;
		size_t kl = (size_t)(p - k);
		while (*p == ' ')
			p++;
		if (*p != '=') {
			continue;
		}
		p++;
		while (*p == ' ')
			p++;
		size_t o = 0;
		bool match = kl == klen && !strncasecmp(k, key, klen);
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				if (match && o + 1 < outlen)
					out[o++] = *p;
				else if (match)
					return false;
				p++;
			}
			if (*p == '"')
				p++;
		} else {
			while (*p && *p != ',' && *p != ' ') {
				if (match && o + 1 < outlen)
					out[o++] = *p;
				else if (match)
					return false;
				p++;
			}
		}
		if (match) {
			out[o] = '\0';
			return true;
		}
	}
	return false;
}

bool auth_client_answer(const char *challenge, const char *user, const char *pass, const char *method,
                        const char *uri, unsigned nc, const char *cnonce, char *out, size_t outlen)
{
	if (!strncasecmp(challenge, "Basic", 5)) {
		char up[520], b64[700];
		int n = snprintf(up, sizeof up, "%s:%s", user, pass);
		if (n < 0 || (size_t)n >= sizeof up)
			return false;
		base64(up, (size_t)n, b64);
		n = snprintf(out, outlen, "Basic %s", b64);
		return n > 0 && (size_t)n < outlen;
	}
	if (strncasecmp(challenge, "Digest", 6))
		return false;
	const char *list = challenge + 6;
	char realm[128], nonce[256], opaque[256], qop[64], algo[32];
	if (!param(list, "realm", realm, sizeof realm) || !param(list, "nonce", nonce, sizeof nonce))
		return false;
	bool has_opaque = param(list, "opaque", opaque, sizeof opaque);
	bool has_qop = param(list, "qop", qop, sizeof qop);
	if (param(list, "algorithm", algo, sizeof algo) && strcasecmp(algo, "MD5"))
		return false; /* MD5-sess and others: not supported */
	if (has_qop) {
		/* "auth" or a list containing it */
		if (!strstr(qop, "auth"))
			return false;
		strcpy(qop, "auth");
	}
	char ha1[33], ha2[33], resp[33], ncs[9];
	md5_join(ha1, 3, (const char *const[]){ user, realm, pass });
	md5_join(ha2, 2, (const char *const[]){ method, uri });
	snprintf(ncs, sizeof ncs, "%08x", nc);
	if (has_qop)
		md5_join(resp, 6, (const char *const[]){ ha1, nonce, ncs, cnonce, qop, ha2 });
	else
		md5_join(resp, 3, (const char *const[]){ ha1, nonce, ha2 });
	int n = snprintf(out, outlen, "Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\"",
	                 user, realm, nonce, uri, resp);
	if (n < 0 || (size_t)n >= outlen)
		return false;
	size_t off = (size_t)n;
	if (has_qop)
		n = snprintf(out + off, outlen - off, ", qop=auth, nc=%s, cnonce=\"%s\"", ncs, cnonce);
	else
		n = 0;
	if (n < 0 || (size_t)n >= outlen - off)
		return false;
	off += (size_t)n;
	if (has_opaque) {
		n = snprintf(out + off, outlen - off, ", opaque=\"%s\"", opaque);
		if (n < 0 || (size_t)n >= outlen - off)
			return false;
	}
	return true;
}

void auth_server_challenge(struct auth_server *s, uint64_t now_ms, const uint8_t rand16[16], char *out,
                           size_t outlen)
{
	unsigned i = s->next++ % AUTH_NONCES;
	for (int k = 0; k < 16; k++)
		snprintf(s->nonces[i].nonce + 2 * k, 3, "%02x", rand16[k]);
	s->nonces[i].born_ms = now_ms;
	s->nonces[i].last_nc = 0;
	snprintf(out, outlen, "Digest realm=\"%s\", qop=\"auth\", nonce=\"%s\", algorithm=MD5", s->realm,
	         s->nonces[i].nonce);
}

bool auth_server_check(struct auth_server *s, const char *header, const char *method, uint64_t now_ms)
{
	if (strncasecmp(header, "Digest", 6))
		return false;
	const char *list = header + 6;
	char user[256], realm[64], nonce[64], uri[512], resp[64], qop[16], nc[16], cnonce[128];
	if (!param(list, "username", user, sizeof user) || !param(list, "realm", realm, sizeof realm) ||
	    !param(list, "nonce", nonce, sizeof nonce) || !param(list, "uri", uri, sizeof uri) ||
	    !param(list, "response", resp, sizeof resp) || !param(list, "qop", qop, sizeof qop) ||
	    !param(list, "nc", nc, sizeof nc) || !param(list, "cnonce", cnonce, sizeof cnonce))
		return false;
	if (strcmp(user, s->user) || strcmp(realm, s->realm) || strcmp(qop, "auth"))
		return false;
	for (unsigned i = 0; i < AUTH_NONCES; i++) {
		if (!s->nonces[i].born_ms || strcmp(s->nonces[i].nonce, nonce))
			continue;
		if (now_ms - s->nonces[i].born_ms > 60000)
			return false;
		char *end;
		unsigned long ncv = strtoul(nc, &end, 16);
		if (*end || ncv <= s->nonces[i].last_nc || ncv > 0xffffffffUL)
			return false;
		char ha1[33], ha2[33], want[33];
		md5_join(ha1, 3, (const char *const[]){ s->user, s->realm, s->pass });
		md5_join(ha2, 2, (const char *const[]){ method, uri });
		md5_join(want, 6, (const char *const[]){ ha1, nonce, nc, cnonce, qop, ha2 });
		if (strcasecmp(want, resp))
			return false;
		s->nonces[i].last_nc = (uint32_t)ncv;
		return true;
	}
	return false;
}
