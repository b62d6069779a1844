/*
 * fuzz_replay_main.c - feeds every file of the directories (or files) named on the
 * command line to LLVMFuzzerTestOneInput, plus every prefix of each, so the seed corpora
 * are exercised by compilers without libFuzzer. Fails when no input was found.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t buf[65536];

static int run_file(const char *path, size_t max_prefix)
{
	FILE *fp = fopen(path, "rb");
	size_t n;

	if (fp == NULL) {
		perror(path);
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, n);
	for (size_t k = 0; k < n && k < max_prefix; k++)
		LLVMFuzzerTestOneInput(buf, k);
	return 0;
}

int main(int argc, char **argv)
{
	int inputs = 0;
	size_t max_prefix = 4096;
	const char *env = getenv("REPLAY_MAX_PREFIX");

	if (env != NULL)
		max_prefix = strtoul(env, NULL, 10);
	for (int i = 1; i < argc; i++) {
		struct stat sb;
		DIR *d;
		struct dirent *de;

		if (stat(argv[i], &sb) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(sb.st_mode)) {
			if (run_file(argv[i], max_prefix) != 0)
				return 1;
			inputs++;
			continue;
		}
		d = opendir(argv[i]);
		if (d == NULL) {
			perror(argv[i]);
			return 1;
		}
		while ((de = readdir(d)) != NULL) {
			char path[4096];

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
				if (run_file(path, max_prefix) != 0) {
					closedir(d);
					return 1;
				}
				inputs++;
			}
		}
		closedir(d);
	}
	printf("replayed %d inputs\n", inputs);
	return inputs > 0 ? 0 : 1;
}
