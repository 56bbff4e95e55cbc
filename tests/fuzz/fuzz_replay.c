/* SPDX-License-Identifier: MIT */
/*
 * Runs a fuzz target's LLVMFuzzerTestOneInput over files and directories given on the command
 * line, without libFuzzer: the seed corpus (and any crash input) is replayed in ordinary and
 * sanitizer builds and under valgrind. Exits non-zero if no input was found.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned runs;

static void run_file(const char *path)
{
	static uint8_t buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		exit(1);
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	/* every prefix too: inputs cut at any point are what a stream sees on a disconnect */
	for (size_t cut = 0; cut < n; cut += 1 + n / 16)
		LLVMFuzzerTestOneInput(buf, cut);
	runs++;
}

static void run_path(const char *path)
{
	struct stat st;

	if (stat(path, &st)) {
		perror(path);
		exit(1);
	}
	if (S_ISDIR(st.st_mode)) {
		struct dirent **names;
		int n = scandir(path, &names, NULL, alphasort);

		for (int i = 0; i < n; i++) {
			char sub[4096];

			if (names[i]->d_name[0] != '.') {
				snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name);
				run_path(sub);
			}
			free(names[i]);
		}
		free(names);
	} else {
		run_file(path);
	}
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		run_path(argv[i]);
	printf("1..1\n%s 1 - %u inputs replayed\n", runs ? "ok" : "not ok", runs);
	return runs ? 0 : 1;
}
