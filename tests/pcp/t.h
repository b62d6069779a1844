/* t.h - minimal test helpers for tests/pcp: CHECK counts failures, main returns them. */
#ifndef IWFD_TESTS_PCP_T_H
#define IWFD_TESTS_PCP_T_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int t_failures;

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			t_failures++;                                                          \
		}                                                                              \
	} while (0)

#define CHECK_EQ(a, b)                                                                          \
	do {                                                                                    \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);                         \
		if (t_a_ != t_b_) {                                                             \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", __FILE__, \
				__LINE__, #a, t_a_, #b, t_b_);                                  \
			t_failures++;                                                           \
		}                                                                               \
	} while (0)

#define CHECK_RANGE(v, lo, hi)                                                                  \
	do {                                                                                    \
		long long t_v_ = (long long)(v), t_lo_ = (long long)(lo), t_hi_ = (long long)(hi); \
		if (t_v_ < t_lo_ || t_v_ > t_hi_) {                                             \
			fprintf(stderr, "%s:%d: CHECK_RANGE failed: %s == %lld not in [%lld, %lld]\n", \
				__FILE__, __LINE__, #v, t_v_, t_lo_, t_hi_);                    \
			t_failures++;                                                           \
		}                                                                               \
	} while (0)

/* Parse hex digits (spaces and newlines ignored) into out; returns the byte count. */
static inline size_t t_hex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;
	for (; *hex; hex++) {
		int v;
		if (*hex >= '0' && *hex <= '9')
			v = *hex - '0';
		else if (*hex >= 'a' && *hex <= 'f')
			v = *hex - 'a' + 10;
		else if (*hex >= 'A' && *hex <= 'F')
			v = *hex - 'A' + 10;
		else
			continue;
		if (hi < 0) {
			hi = v;
		} else {
			if (n < cap)
				out[n] = (uint8_t)(hi << 4 | v);
			n++;
			hi = -1;
		}
	}
	return n;
}

#define T_RUN(fn)                                        \
	do {                                             \
		int t_before_ = t_failures;              \
		fn();                                    \
		fprintf(stderr, "%s %s\n", t_failures == t_before_ ? "ok  " : "FAIL", #fn); \
	} while (0)

#endif
