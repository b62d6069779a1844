/* testutil.h - minimal assertion helpers shared by the C unit tests. */
#ifndef IWFD_TESTUTIL_H
#define IWFD_TESTUTIL_H
#include <stdio.h>
#include <stdlib.h>

static int tu_failures;
static int tu_checks;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		tu_checks++;                                                             \
		if (!(cond)) {                                                           \
			tu_failures++;                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                        \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                               \
	do {                                                                             \
		long long tu_a = (long long)(a), tu_b = (long long)(b);                  \
		tu_checks++;                                                             \
		if (tu_a != tu_b) {                                                      \
			tu_failures++;                                                   \
			fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, \
				__LINE__, #a, tu_a, #b, tu_b);                           \
		}                                                                        \
	} while (0)

static inline int tu_finish(const char *name)
{
	fprintf(stderr, "%s: %d checks, %d failed\n", name, tu_checks, tu_failures);
	return tu_failures ? 1 : 0;
}
#endif
