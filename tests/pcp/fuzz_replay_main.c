/*
 * fuzz_replay_main.c - runs LLVMFuzzerTestOneInput over files and directories given on
 * the command line, so the seed corpus is exercised by compilers without libFuzzer.
 * Exits non-zero when an argument cannot be read or no input was found.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		perror(path);
		return -1;
	}
	uint8_t buf[65536];
	size_t n = fread(buf, 1, sizeof buf, fp);
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, n);
	/* every prefix too: truncated packets are the commonest malformation */
	for (size_t k = 0; k < n && k < 1200; k++)
		LLVMFuzzerTestOneInput(buf, k);
	return 1;
}

int main(int argc, char **argv)
{
	int inputs = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) < 0)
				return 1;
			inputs++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (!d) {
			perror(argv[i]);
			return 1;
		}
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				if (run_file(path) < 0) {
					closedir(d);
					return 1;
				}
				inputs++;
			}
		}
		closedir(d);
	}
	printf("replayed %d inputs\n", inputs);
	return inputs == 0;
}
