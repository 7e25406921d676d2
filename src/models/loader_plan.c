/* Loader, what is where: paths, pickle refusal, path classification and the
 * plan of a folder (its components and the weight files the loader takes).
 * Builds no model. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/file.h"
#include "models/loader_impl.h"
#include "models/model_config.h"

/* ---- paths ----------------------------------------------------------------- */

const char *sd_join(char *buf, size_t cap, const char *dir, const char *name) {
    size_t n = strlen(dir);
    int k = snprintf(buf, cap, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
    return k >= 0 && (size_t)k < cap ? buf : NULL;
}

int sd_is_file(const char *path) { return file_is_regular(path); }

int sd_is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int sd_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static const char *const pickle_exts[] = {".ckpt", ".bin", ".pt", ".pth", ".pkl", ".pickle"};

int sd_is_pickle_name(const char *name) {
    for (size_t i = 0; i < sizeof pickle_exts / sizeof *pickle_exts; i++)
        if (sd_ends_with(name, pickle_exts[i])) return 1;
    return 0;
}

const char *sd_base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

int loader_refuse_pickle(const char *what, oir_error *err) {
    return oir_fail(err, OIR_E_UNSUPPORTED,
                    "%s: pickle checkpoints can execute code and are not loaded; convert to "
                    "safetensors first: a single-file checkpoint with diffusers' "
                    "scripts/convert_original_stable_diffusion_to_diffusers.py --checkpoint_path "
                    "MODEL.ckpt --to_safetensors --dump_path OUT_DIR (gives a diffusers folder), or "
                    "any torch state dict in trusted Python with "
                    "safetensors.torch.save_file(torch.load(F, weights_only=True), F_NEW); a "
                    "diffusers/transformers folder with .from_pretrained(DIR).save_pretrained(OUT, "
                    "safe_serialization=True)",
                    what);
}

/* ---- path classification --------------------------------------------------- */

/* First bytes of a file (zero-filled past its end); how many were read. */
static size_t read_magic(const char *path, unsigned char *buf, size_t n) {
    memset(buf, 0, n);
    int fd;
    if (file_open_regular(path, &fd, NULL, NULL)) return 0; /* never blocks on a FIFO */
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    return got;
}

/* Any file in dir whose name is a pickle format. */
static int dir_has_pickle(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) found = sd_is_pickle_name(e->d_name);
    closedir(d);
    return found;
}

static int dir_has_safetensors(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) found = sd_ends_with(e->d_name, ".safetensors");
    closedir(d);
    return found;
}

model_path_kind model_path_detect(const char *path) {
    char p[1200];
    if (sd_is_dir(path)) {
        if (sd_is_file(sd_join(p, sizeof p, path, "model_index.json") ? p : ""))
            return MODEL_PATH_DIFFUSERS;
        if (sd_join(p, sizeof p, path, "config.json") && sd_is_file(p)) {
            model_config c;
            oir_error err;
            model_path_kind k = MODEL_PATH_UNKNOWN;
            if (model_config_read(&c, p, &err) == OIR_OK) {
                const char *cls = NULL, *type = NULL;
                model_config_str(&c, "_class_name", NULL, &cls, &err);
                model_config_str(&c, "model_type", NULL, &type, &err);
                if (type && !strcmp(type, "clip")) k = MODEL_PATH_CLIP;
                else if (cls || type) k = MODEL_PATH_COMPONENT;
                model_config_free(&c);
            }
            if (k != MODEL_PATH_UNKNOWN && !dir_has_safetensors(path) && dir_has_pickle(path))
                return MODEL_PATH_PICKLE;
            return k;
        }
        return dir_has_pickle(path) ? MODEL_PATH_PICKLE : MODEL_PATH_UNKNOWN;
    }
    if (!sd_is_file(path)) return MODEL_PATH_UNKNOWN;
    if (sd_is_pickle_name(path)) return MODEL_PATH_PICKLE;
    unsigned char m[9];
    if (read_magic(path, m, sizeof m) < 2) return MODEL_PATH_UNKNOWN;
    if (m[0] == 'P' && m[1] == 'K' && m[2] == 3 && m[3] == 4) return MODEL_PATH_PICKLE; /* torch zip */
    if (m[0] == 0x80 && m[1] >= 2 && m[1] <= 5) return MODEL_PATH_PICKLE;               /* pickle */
    if (m[8] == '{' || sd_ends_with(path, ".safetensors")) return MODEL_PATH_SINGLE_FILE;
    return MODEL_PATH_UNKNOWN;
}

/* ---- weight files of a component folder ------------------------------------ */

static int plan_add_file(sd_component_plan *c, const char *path) {
    if (c->nfiles >= SD_PLAN_MAX_FILES) return 0;
    for (int i = 0; i < c->nfiles; i++)
        if (!strcmp(c->files[i], path)) return 1;
    char *s = strdup(path);
    if (!s) return 0;
    c->files[c->nfiles++] = s;
    return 1;
}

/* A shard index ({"weight_map": {tensor: file}}): its files, in first-seen order. */
static int plan_from_index(sd_component_plan *c, const char *index_path, oir_error *err) {
    model_config mc;
    int rc = model_config_read(&mc, index_path, err);
    if (rc) return rc;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(mc.root, "weight_map");
    if (!cJSON_IsObject(map)) {
        rc = oir_fail(err, OIR_E_FORMAT, "%s: no \"weight_map\" object", index_path);
        goto cleanup;
    }
    const cJSON *it;
    char p[1200];
    cJSON_ArrayForEach(it, map) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/') || !it->valuestring[0]) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: weight_map[\"%s\"] is not a file name in the folder",
                          index_path, it->string ? it->string : "?");
            goto cleanup;
        }
        if (sd_is_pickle_name(it->valuestring)) {
            rc = loader_refuse_pickle(index_path, err);
            goto cleanup;
        }
        if (!sd_join(p, sizeof p, c->dir, it->valuestring) || !plan_add_file(c, p)) {
            rc = oir_fail(err, OIR_E_FORMAT, "%s: too many shards (at most %d)", index_path,
                          SD_PLAN_MAX_FILES);
            goto cleanup;
        }
    }
cleanup:
    model_config_free(&mc);
    return rc;
}

/* Variant names present: files "<base>.<variant>.safetensors". */
static void plan_variants(sd_component_plan *c, const char *base) {
    DIR *d = opendir(c->dir);
    if (!d) return;
    size_t bl = strlen(base), used = strlen(c->variants);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) || n[bl] != '.' || !sd_ends_with(n, ".safetensors")) continue;
        size_t nl = strlen(n), sl = strlen(".safetensors");
        if (nl <= bl + 1 + sl) continue; /* "<base>.safetensors" itself: no variant */
        size_t vl = nl - bl - 1 - sl;
        if (memchr(n + bl + 1, '.', vl) || strchr(n + bl + 1, '-')) continue;
        int k = snprintf(c->variants + used, sizeof c->variants - used, "%s%.*s", used ? "," : "",
                         (int)vl, n + bl + 1);
        if (k > 0 && used + (size_t)k < sizeof c->variants) used += (size_t)k;
    }
    closedir(d);
}

/* diffusers' choice: with a variant, "<base>.<variant>.safetensors" or its
 * shard index, else the plain file or index; nothing -> nfiles 0 (and
 * pickle_only when .bin/.ckpt weights are there instead). */
static int plan_weights(sd_component_plan *c, const char *base, const char *variant,
                        oir_error *err) {
    char name[256], p[1200];
    plan_variants(c, base);
    for (int pass = variant ? 0 : 1; pass < 2; pass++) {
        if (pass == 0) snprintf(name, sizeof name, "%s.%s.safetensors", base, variant);
        else snprintf(name, sizeof name, "%s.safetensors", base);
        if (sd_join(p, sizeof p, c->dir, name) && sd_is_file(p)) return plan_add_file(c, p) ? OIR_OK : oir_fail(err, OIR_E_NOMEM, "out of memory");
        if (pass == 0) snprintf(name, sizeof name, "%s.safetensors.index.%s.json", base, variant);
        else snprintf(name, sizeof name, "%s.safetensors.index.json", base);
        if (sd_join(p, sizeof p, c->dir, name) && sd_is_file(p)) return plan_from_index(c, p, err);
    }
    c->pickle_only = dir_has_pickle(c->dir);
    return OIR_OK;
}

const char *sd_weights_base(const char *library, const char *class_name) {
    if (library && !strcmp(library, "transformers")) return "model";
    if (class_name && !strncmp(class_name, "CLIP", 4)) return "model";
    return "diffusion_pytorch_model";
}

static int has_weights(const char *class_name) {
    static const char *const no[] = {"Scheduler", "Tokenizer", "FeatureExtractor", "ImageProcessor",
                                     "Processor"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (class_name && strstr(class_name, no[i])) return 0;
    return 1;
}

static int plan_component(sd_plan *plan, const char *name, const char *library,
                          const char *class_name, const char *dir, const char *variant,
                          oir_error *err) {
    if (plan->n >= (int)(sizeof plan->comp / sizeof plan->comp[0])) return OIR_OK;
    sd_component_plan *c = &plan->comp[plan->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->library, sizeof c->library, "%s", library ? library : "");
    snprintf(c->class_name, sizeof c->class_name, "%s", class_name ? class_name : "");
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    char p[sizeof c->config];
    const char *cfg = class_name && strstr(class_name, "Scheduler") ? "scheduler_config.json"
                      : class_name && strstr(class_name, "Tokenizer") ? "tokenizer_config.json"
                                                                       : "config.json";
    if (sd_join(p, sizeof p, dir, cfg) && sd_is_file(p)) memcpy(c->config, p, sizeof p);
    if (!has_weights(class_name)) return OIR_OK;
    return plan_weights(c, sd_weights_base(library, class_name), variant, err);
}

void sd_plan_free(sd_plan *plan) {
    for (int i = 0; i < plan->n; i++)
        for (int k = 0; k < plan->comp[i].nfiles; k++) free(plan->comp[i].files[k]);
    plan->n = 0;
}

int sd_plan_folder(sd_plan *plan, const char *dir, const char *variant, oir_error *err) {
    memset(plan, 0, sizeof *plan);
    plan->kind = model_path_detect(dir);
    char p[1200], sub[1200];
    model_config mc = {0};
    int rc = OIR_OK;
    switch (plan->kind) {
    case MODEL_PATH_DIFFUSERS: {
        if ((rc = model_config_read(&mc, sd_join(p, sizeof p, dir, "model_index.json"), err))) break;
        const char *cls = NULL;
        model_config_str(&mc, "_class_name", "", &cls, err);
        snprintf(plan->class_name, sizeof plan->class_name, "%s", cls ? cls : "");
        const cJSON *it;
        cJSON_ArrayForEach(it, mc.root) {
            if (!it->string || it->string[0] == '_' || !cJSON_IsArray(it) ||
                cJSON_GetArraySize(it) != 2)
                continue;
            const cJSON *lib = cJSON_GetArrayItem(it, 0), *cl = cJSON_GetArrayItem(it, 1);
            if (!cJSON_IsString(lib) || !cJSON_IsString(cl)) continue; /* [null, null]: absent */
            if (!sd_join(sub, sizeof sub, dir, it->string)) continue;
            if ((rc = plan_component(plan, it->string, lib->valuestring, cl->valuestring, sub,
                                     variant, err)))
                break;
        }
        break;
    }
    case MODEL_PATH_COMPONENT:
    case MODEL_PATH_CLIP:
    case MODEL_PATH_PICKLE: {
        const char *cls = NULL, *type = NULL;
        if (sd_join(p, sizeof p, dir, "config.json") && sd_is_file(p) &&
            model_config_read(&mc, p, err) == OIR_OK) {
            model_config_str(&mc, "_class_name", NULL, &cls, err);
            model_config_str(&mc, "model_type", NULL, &type, err);
            if (!cls && mc.root) {
                const cJSON *arch = cJSON_GetObjectItemCaseSensitive(mc.root, "architectures");
                const cJSON *a0 = cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
                if (cJSON_IsString(a0)) cls = a0->valuestring;
            }
        }
        snprintf(plan->class_name, sizeof plan->class_name, "%s", cls ? cls : type ? type : "");
        const char *name = plan->kind == MODEL_PATH_CLIP ? "clip" : sd_base_name(dir);
        rc = plan_component(plan, name, cls && !type ? "diffusers" : "transformers", cls ? cls : type,
                            dir, variant, err);
        break;
    }
    default:
        rc = oir_fail(err, OIR_E_FORMAT,
                      "%s: not a model folder (no model_index.json, no config.json with "
                      "_class_name or model_type)",
                      dir);
    }
    model_config_free(&mc);
    if (rc) sd_plan_free(plan);
    return rc;
}


const sd_component_plan *sd_plan_find(const sd_plan *plan, const char *name) {
    for (int i = 0; i < plan->n; i++)
        if (!strcmp(plan->comp[i].name, name)) return &plan->comp[i];
    return NULL;
}
