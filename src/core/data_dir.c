/* Where the shipped tiny models live, so that the defaults work from any
 * current folder: in the build tree, after `make install`, and after moving
 * an installed tree somewhere else. */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "oir.h"

static char models_dir[PATH_MAX + 32];
static pthread_once_t models_once = PTHREAD_ONCE_INIT;

/* 1 when dir holds the default SD model (tiny-shapes/model_index.json). */
static int holds_models(const char *dir) {
    char probe[PATH_MAX + 64];
    struct stat sb;
    if (snprintf(probe, sizeof probe, "%s/tiny-shapes/model_index.json", dir) >= (int)sizeof probe)
        return 0;
    return stat(probe, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Walks up from the folder of `file`: each ancestor A is tried as
 * A/share/oir/models (an install) and then A/models (the build tree). */
static int search_up(const char *file) {
    char dir[PATH_MAX], cand[PATH_MAX + 32];
    if (!realpath(file, dir)) return 0;
    char *slash = strrchr(dir, '/');
    while (slash) {
        *slash = '\0';
        const char *base = dir[0] ? dir : "";
        snprintf(cand, sizeof cand, "%s/share/oir/models", base);
        if (holds_models(cand)) break;
        snprintf(cand, sizeof cand, "%s/models", base);
        if (holds_models(cand)) break;
        slash = strrchr(dir, '/');
    }
    if (!slash) return 0;
    snprintf(models_dir, sizeof models_dir, "%s", cand);
    return 1;
}

static void resolve_models_dir(void) {
    const char *env = getenv("OIR_MODELS");
    if (env && env[0]) {
        snprintf(models_dir, sizeof models_dir, "%s", env);
        return;
    }
    Dl_info info; /* the shared library, or the program when linked statically */
    if (dladdr((void *)&resolve_models_dir, &info) && info.dli_fname && search_up(info.dli_fname))
        return;
    if (search_up("/proc/self/exe")) return;
    snprintf(models_dir, sizeof models_dir, "models");
}

const char *oir_models_dir(void) {
    pthread_once(&models_once, resolve_models_dir);
    return models_dir;
}
