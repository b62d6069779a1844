/*
 * testutil.h - THE test-utility header of the C unit tests (every module): checks that count
 * and report failures, and small helpers. A test program ends with tu_finish(name), which
 * prints "name: N checks, M failed" and returns the exit status (non-zero on any failure or
 * when nothing was checked).
 */
#ifndef IWFD_TESTUTIL_H
#define IWFD_TESTUTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tu_failures;
static int tu_checks;

#define CHECK(cond)                                                                           \
	do {                                                                                  \
		tu_checks++;                                                                  \
		if (!(cond)) {                                                                \
			tu_failures++;                                                        \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                             \
	} while (0)

/* CHECK with a printf-style explanation printed on failure. */
#define CHECKF(cond, ...)                                                                     \
	do {                                                                                  \
		tu_checks++;                                                                  \
		if (!(cond)) {                                                                \
			tu_failures++;                                                        \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                         \
			fputc('\n', stderr);                                                  \
		}                                                                             \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                    \
	do {                                                                                  \
		long long tu_a = (long long)(a), tu_b = (long long)(b);                       \
		tu_checks++;                                                                  \
		if (tu_a != tu_b) {                                                           \
			tu_failures++;                                                        \
			fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, \
				__LINE__, #a, tu_a, #b, tu_b);                                \
		}                                                                             \
	} while (0)
#define CHECK_EQ(a, b) CHECK_EQ_INT(a, b)

#define CHECK_RANGE(v, lo, hi)                                                                \
	do {                                                                                  \
		long long tu_v = (long long)(v), tu_lo = (long long)(lo), tu_hi = (long long)(hi); \
		tu_checks++;                                                                  \
		if (tu_v < tu_lo || tu_v > tu_hi) {                                           \
			tu_failures++;                                                        \
			fprintf(stderr, "%s:%d: %s == %lld not in [%lld, %lld]\n", __FILE__,  \
				__LINE__, #v, tu_v, tu_lo, tu_hi);                            \
		}                                                                             \
	} while (0)

/* Run one test function and say whether it added failures. */
#define TU_RUN(fn)                                                                            \
	do {                                                                                  \
		int tu_before = tu_failures;                                                  \
		fn();                                                                         \
		fprintf(stderr, "%s %s\n", tu_failures == tu_before ? "ok  " : "FAIL", #fn);  \
	} while (0)

/* Parse hex digits (anything else, e.g. spaces and newlines, ignored) into out[0..cap);
 * returns the number of bytes the text holds. */
static inline size_t tu_hex(const char *hex, uint8_t *out, size_t cap)
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

static inline int tu_finish(const char *name)
{
	fprintf(stderr, "%s: %d checks, %d failed\n", name, tu_checks, tu_failures);
	return tu_failures == 0 && tu_checks > 0 ? 0 : 1;
}
#endif
