/* Inputs that once crashed a fuzzer, replayed through the same harness code
 * (tests/fuzz/fuzz_<target>.c, compiled in with FUZZ_REGRESSION) in the
 * normal build, so `make test` and `make asan-test` keep them fixed; then the
 * seed corpus of each target, so the harnesses themselves stay working.
 *
 * tests/fuzz/regressions/<target>/ holds the crash inputs of each target
 * (every file but dot-files; a .keep file keeps a folder with none) and
 * tests/fuzz/corpus/<target>/ its seeds; a missing folder, or a target with
 * no seeds, fails. Files listed in tests/fuzz/regressions/KNOWN
 * ("<target>/<file>", one a line, '#' starts a comment) are bugs still open
 * elsewhere: they are skipped, and named. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define FUZZ_REGRESSION
#include "fuzz/fuzz_edit_config.c"
#include "fuzz/fuzz_image.c"
#include "fuzz/fuzz_manifest.c"
#include "fuzz/fuzz_model_config.c"
#include "fuzz/fuzz_safetensors.c"
#include "fuzz/fuzz_tokenizer.c"

#define REG_DIR "tests/fuzz/regressions"
#define CORPUS_DIR "tests/fuzz/corpus"
#define REG_MAX_KNOWN 256

static const struct {
    const char *name;
    int (*one)(const uint8_t *data, size_t size);
} targets[] = {
    {"edit_config", fuzz_edit_config_one}, {"image", fuzz_image_one}, {"manifest", fuzz_manifest_one},
    {"model_config", fuzz_model_config_one}, {"safetensors", fuzz_safetensors_one},
    {"tokenizer", fuzz_tokenizer_one},
};

static char *known[REG_MAX_KNOWN];
static int n_known;

static void read_known(void) {
    FILE *fp = fopen(REG_DIR "/KNOWN", "r");
    if (!fp) return; /* no open bugs */
    char line[1024];
    while (fgets(line, sizeof line, fp)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *tok = strtok(line, " \t\r\n");
        if (!tok) continue;
        if (!CHECK(n_known < REG_MAX_KNOWN, "KNOWN: more than %d entries", REG_MAX_KNOWN)) break;
        known[n_known++] = strdup(tok);
    }
    fclose(fp);
}

static int is_known(const char *rel) {
    for (int i = 0; i < n_known; i++)
        if (!strcmp(known[i], rel)) return 1;
    return 0;
}

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t k; buf && (k = fread(buf + n, 1, cap - n, fp)) > 0;) {
        n += k;
        if (n == cap) {
            uint8_t *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    fclose(fp);
    *size = n;
    return buf;
}

/* Every input file of dir/<target>/ through the target's harness; the count
 * run, or -1 when the folder is missing. known: skip the KNOWN list. */
static int run_folder(int t, const char *dir, int known_list, int verbose) {
    char sub[512], rel[512], path[1024];
    snprintf(sub, sizeof sub, "%s/%s", dir, targets[t].name);
    struct dirent **ents = NULL;
    int n = scandir(sub, &ents, NULL, alphasort);
    if (!CHECK(n >= 0, "%s: missing folder", sub)) return -1;
    int ran = 0, skipped = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        if (name[0] == '.') continue;
        snprintf(rel, sizeof rel, "%s/%s", targets[t].name, name);
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        if (known_list && is_known(rel)) {
            printf("  skip (KNOWN, open bug) %s\n", rel);
            skipped++;
            continue;
        }
        size_t size = 0;
        uint8_t *data = read_all(path, &size);
        if (!CHECK(data != NULL, "%s: cannot read", path)) continue;
        if (verbose) printf("  %s (%zu bytes)\n", rel, size);
        fflush(stdout); /* name the input before a crash */
        CHECK(targets[t].one(data, size) == 0, "%s: harness returned non-zero", path);
        free(data);
        ran++;
    }
    for (int i = 0; i < n; i++) free(ents[i]);
    free(ents);
    printf("%s: %d inputs ran%s", sub, ran, known_list ? "" : "\n");
    if (known_list) printf(", %d known skipped\n", skipped);
    return ran;
}

static void run_target(int t) {
    run_folder(t, REG_DIR, 1, 1);
    int seeds = run_folder(t, CORPUS_DIR, 0, 0);
    if (seeds >= 0) CHECK(seeds > 0, "%s/%s: no seeds", CORPUS_DIR, targets[t].name);
}

int main(void) {
    read_known();
    for (int i = 0; i < n_known; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", REG_DIR, known[i]);
        FILE *fp = fopen(path, "rb");
        CHECK(fp != NULL, "KNOWN names %s, which does not exist", path);
        if (fp) fclose(fp);
    }
    for (size_t t = 0; t < sizeof targets / sizeof *targets; t++) run_target((int)t);
    for (int i = 0; i < n_known; i++) free(known[i]);
    return th_summary();
}
