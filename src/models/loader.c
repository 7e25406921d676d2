/* Loader: diffusers folders, CLIP folders, path classification, pickle
 * refusal. Single-file checkpoints are in loader_single.c. */
#include "models/loader.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/file.h"

#include "models/ldm_names.h"
#include "models/loader_impl.h"
#include "models/model_config.h"

sd_load_params sd_load_default_params(void) {
    sd_load_params p = {.variant = NULL, .config_dir = NULL, .tokenizer_dir = NULL,
                        .components = SD_ALL, .tokenizer_mode = TOKENIZER_CLIP};
    return p;
}

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

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static const char *const pickle_exts[] = {".ckpt", ".bin", ".pt", ".pth", ".pkl", ".pickle"};

static int is_pickle_name(const char *name) {
    for (size_t i = 0; i < sizeof pickle_exts / sizeof *pickle_exts; i++)
        if (ends_with(name, pickle_exts[i])) return 1;
    return 0;
}

static const char *base_name(const char *path) {
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
    while (!found && (e = readdir(d))) found = is_pickle_name(e->d_name);
    closedir(d);
    return found;
}

static int dir_has_safetensors(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) found = ends_with(e->d_name, ".safetensors");
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
    if (is_pickle_name(path)) return MODEL_PATH_PICKLE;
    unsigned char m[9];
    if (read_magic(path, m, sizeof m) < 2) return MODEL_PATH_UNKNOWN;
    if (m[0] == 'P' && m[1] == 'K' && m[2] == 3 && m[3] == 4) return MODEL_PATH_PICKLE; /* torch zip */
    if (m[0] == 0x80 && m[1] >= 2 && m[1] <= 5) return MODEL_PATH_PICKLE;               /* pickle */
    if (m[8] == '{' || ends_with(path, ".safetensors")) return MODEL_PATH_SINGLE_FILE;
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
        if (is_pickle_name(it->valuestring)) {
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
        if (strncmp(n, base, bl) || n[bl] != '.' || !ends_with(n, ".safetensors")) continue;
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

static const char *weights_base(const char *library, const char *class_name) {
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
    return plan_weights(c, weights_base(library, class_name), variant, err);
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
        const char *name = plan->kind == MODEL_PATH_CLIP ? "clip" : base_name(dir);
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

static const sd_component_plan *plan_find(const sd_plan *plan, const char *name) {
    for (int i = 0; i < plan->n; i++)
        if (!strcmp(plan->comp[i].name, name)) return &plan->comp[i];
    return NULL;
}

/* ---- model bookkeeping ---------------------------------------------------- */

void sd_note(sd_model *m, const char *fmt, ...) {
    if (m->n_notes >= (int)(sizeof m->notes / sizeof m->notes[0])) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->notes[m->n_notes++], sizeof m->notes[0], fmt, ap);
    va_end(ap);
}

int sd_files_open(sd_model_files *mf, const char *path, st_file **out, oir_error *err) {
    if (mf->nfiles >= SD_MAX_OPEN)
        return oir_fail(err, OIR_E_ARG, "%s: more than %d weight files", path, SD_MAX_OPEN);
    if (is_pickle_name(path)) return loader_refuse_pickle(path, err);
    int rc = st_open(out, path, err);
    if (rc) return rc;
    mf->files[mf->nfiles++] = *out;
    return OIR_OK;
}

/* Opens the planned files of a component and its weights. */
static int open_component(sd_model *m, const sd_component_plan *c, const char *component,
                          const char *variant, weights **w, oir_error *err) {
    if (!c->nfiles) {
        if (c->pickle_only) return loader_refuse_pickle(c->dir, err);
        if (c->variants[0] && !variant)
            return oir_fail(err, OIR_E_IO,
                            "%s: no %s weights; the folder only has the variant(s) %s: load with "
                            "variant \"%s\" (--variant)",
                            c->dir, component, c->variants, c->variants);
        return oir_fail(err, OIR_E_IO, "%s: no %s weights (expected %s.safetensors)", c->dir,
                        component, weights_base(c->library, c->class_name));
    }
    st_file *files[SD_PLAN_MAX_FILES];
    for (int i = 0; i < c->nfiles; i++) {
        int rc = sd_files_open(m->files, c->files[i], &files[i], err);
        if (rc) return rc;
    }
    weights_opts o = {.component = component};
    if (!strcmp(component, "vae")) o.reshape_ok = ldm_vae_reshape_ok;
    int rc = weights_open(w, files, c->nfiles, &o, err);
    if (rc) return rc;
    const char *file = base_name(c->files[0]);
    int is_variant = variant && strstr(file, variant) != NULL;
    sd_note(m, "%s: %s%s%s", component, file, c->nfiles > 1 ? " (+ shards)" : "",
            variant && !is_variant ? " (no variant file, plain weights)" : "");
    return OIR_OK;
}

int sd_load_tokenizer(sd_model *m, const char *dir, tokenizer_mode mode, oir_error *err) {
    if (!dir) { /* the built-in vocabulary, when it fits the text encoder */
        int V = m->text_encoder ? clip_text_get_config(m->text_encoder)->vocab_size : 0;
        if (m->text_encoder && V < 49408) {
            sd_note(m, "tokenizer: none (no tokenizer folder, and the built-in CLIP vocabulary's "
                       "49408 ids do not fit the text encoder's %d)", V);
            return OIR_OK;
        }
        int rc = tokenizer_load_builtin(&m->tokenizer, err);
        if (rc) return rc;
        tokenizer_set_mode(m->tokenizer, mode);
        sd_note(m, "tokenizer: %s (49408 ids), %s mode", TOKENIZER_BUILTIN_NAME, tokenizer_mode_name(mode));
        return OIR_OK;
    }
    int rc = tokenizer_load(&m->tokenizer, dir, err);
    if (rc) return rc;
    tokenizer_set_mode(m->tokenizer, mode);
    if (m->text_encoder) {
        int V = clip_text_get_config(m->text_encoder)->vocab_size;
        int n = tokenizer_vocab_size(m->tokenizer);
        if (n > V)
            return oir_fail(err, OIR_E_SHAPE,
                            "%s: the tokenizer has %d ids but the text encoder's vocabulary has %d "
                            "(vocab_size): they do not belong together",
                            dir, n, V);
    }
    sd_note(m, "tokenizer: %s (%d ids), %s mode", dir, tokenizer_vocab_size(m->tokenizer),
            tokenizer_mode_name(mode));
    return OIR_OK;
}

/* weights_finish after a model was built (fails on any recorded problem). */
static int finish(weights *w, oir_error *err) { return weights_finish(w, err); }

int sd_build_text(sd_model *m, const clip_text_config *cfg, oir_error *err) {
    weights *w = m->files->text;
    int rc = clip_text_load(&m->text_encoder, cfg, w, 0, err);
    if (rc) return rc;
    weights_ignore(w, "text_model.embeddings.position_ids"); /* a buffer, not a parameter */
    return finish(w, err);
}

int sd_build_unet(sd_model *m, const unet_config *cfg, oir_error *err) {
    int rc = unet_load_config(&m->unet, cfg, m->files->unet, err);
    return rc ? rc : finish(m->files->unet, err);
}

int sd_build_vae(sd_model *m, const vae_config *cfg, oir_error *err) {
    int rc = vae_load_config(&m->vae, cfg, m->files->vae, err);
    return rc ? rc : finish(m->files->vae, err);
}

int sd_check_components(sd_model *m, oir_error *err) {
    if (m->text_encoder && m->unet) {
        int D = clip_text_get_config(m->text_encoder)->hidden_size;
        if (D != m->unet->cfg.cross_attention_dim)
            return oir_fail(err, OIR_E_SHAPE,
                            "%s: the text encoder's hidden_size %d differs from the unet's "
                            "cross_attention_dim %d",
                            m->path, D, m->unet->cfg.cross_attention_dim);
    }
    if (m->unet && m->vae) {
        int L = m->vae->cfg.latent_channels;
        if (m->unet->cfg.in_channels != L || m->unet->cfg.out_channels != L)
            return oir_fail(err, OIR_E_UNSUPPORTED,
                            "%s: the unet takes %d and gives %d channels but the vae's latents have "
                            "%d (latent_channels)%s",
                            m->path, m->unet->cfg.in_channels, m->unet->cfg.out_channels, L,
                            m->unet->cfg.in_channels > L ? ": an inpainting or depth model? Only "
                                                           "text-to-image SD 1.x UNets are supported"
                                                         : "");
    }
    return OIR_OK;
}

/* "unet: name" strings for every unused tensor. */
static int collect_unused(sd_model_files *mf, oir_error *err) {
    weights *ws[3] = {mf->text, mf->unet, mf->vae};
    int total = 0;
    for (int k = 0; k < 3; k++) total += ws[k] ? weights_unused_count(ws[k]) : 0;
    if (!total) return OIR_OK;
    mf->unused = calloc((size_t)total, sizeof *mf->unused);
    if (!mf->unused) return oir_fail(err, OIR_E_NOMEM, "loader: out of memory");
    for (int k = 0; k < 3; k++) {
        if (!ws[k]) continue;
        for (int i = 0; i < weights_unused_count(ws[k]); i++) {
            const char *name = weights_unused_at(ws[k], i);
            size_t n = strlen(name) + strlen(weights_component(ws[k])) + 3;
            char *s = malloc(n);
            if (!s) return oir_fail(err, OIR_E_NOMEM, "loader: out of memory");
            snprintf(s, n, "%s: %s", weights_component(ws[k]), name);
            mf->unused[mf->n_unused++] = s;
        }
    }
    return OIR_OK;
}

static int require(const sd_plan *plan, const char *name, const char *class_prefix,
                   const char *dir, const sd_component_plan **out, oir_error *err) {
    const sd_component_plan *c = plan_find(plan, name);
    if (!c)
        return oir_fail(err, OIR_E_MISSING, "%s/model_index.json: no \"%s\" component", dir, name);
    if (strncmp(c->class_name, class_prefix, strlen(class_prefix)))
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s/model_index.json: %s is a %s; only %s is supported", dir, name,
                        c->class_name, class_prefix);
    if (!c->config[0] && strcmp(name, "tokenizer"))
        return oir_fail(err, OIR_E_IO, "%s: no config.json", c->dir);
    *out = c;
    return OIR_OK;
}

static int load_diffusers(sd_model *m, const char *path, const sd_load_params *p,
                          oir_error *err) {
    sd_plan plan;
    int rc = sd_plan_folder(&plan, path, p->variant, err);
    if (rc) return rc;
    const sd_component_plan *c;
    if (strstr(plan.class_name, "XL") || plan_find(&plan, "text_encoder_2")) {
        rc = oir_fail(err, OIR_E_UNSUPPORTED,
                      "%s: a %s (Stable Diffusion XL: two text encoders); oir runs Stable Diffusion "
                      "1.x models",
                      path, plan.class_name[0] ? plan.class_name : "SDXL pipeline");
        goto cleanup;
    }
    if (p->components & SD_TEXT_ENCODER) {
        clip_text_config cfg;
        if ((rc = require(&plan, "text_encoder", "CLIPTextModel", path, &c, err)) ||
            (rc = clip_text_config_load(&cfg, c->config, err)) ||
            (rc = open_component(m, c, "text_encoder", p->variant, &m->files->text, err)) ||
            (rc = sd_build_text(m, &cfg, err)))
            goto cleanup;
    }
    if (p->components & SD_UNET) {
        unet_config cfg;
        if ((rc = require(&plan, "unet", "UNet2DConditionModel", path, &c, err)) ||
            (rc = unet_config_load(&cfg, c->config, err)) ||
            (rc = open_component(m, c, "unet", p->variant, &m->files->unet, err)) ||
            (rc = sd_build_unet(m, &cfg, err)))
            goto cleanup;
    }
    if (p->components & SD_VAE) {
        vae_config cfg;
        if ((rc = require(&plan, "vae", "AutoencoderKL", path, &c, err)) ||
            (rc = vae_config_load(&cfg, c->config, err)) ||
            (rc = open_component(m, c, "vae", p->variant, &m->files->vae, err)) ||
            (rc = sd_build_vae(m, &cfg, err)))
            goto cleanup;
    }
    c = plan_find(&plan, "scheduler");
    if (c && c->config[0]) {
        if ((rc = ddim_config_load(&m->scheduler, c->config, err))) goto cleanup;
        sd_note(m, "scheduler: %s (as DDIM)", c->config);
    } else {
        m->scheduler = ddim_sd1_config();
        sd_note(m, "scheduler: SD 1.x defaults (no scheduler/scheduler_config.json)");
    }
    if (p->components & SD_TOKENIZER) {
        c = plan_find(&plan, "tokenizer");
        /* no "tokenizer" in model_index.json: the built-in vocabulary if it fits */
        if ((rc = sd_load_tokenizer(m, c ? c->dir : NULL, p->tokenizer_mode, err))) goto cleanup;
    }
cleanup:
    sd_plan_free(&plan);
    return rc;
}

static void files_free(sd_model_files *mf) {
    if (!mf) return;
    weights_free(mf->text);
    weights_free(mf->unet);
    weights_free(mf->vae);
    for (int i = 0; i < mf->nfiles; i++) st_close(mf->files[i]);
    for (int i = 0; i < mf->n_unused; i++) free(mf->unused[i]);
    free(mf->unused);
    free(mf);
}

void sd_model_free(sd_model *m) {
    if (!m) return;
    tokenizer_free(m->tokenizer);
    clip_text_free(m->text_encoder);
    unet_free(m->unet); /* frees its buffers on the backend first */
    vae_free(m->vae);
    files_free(m->files);
    if (m->backend) be_destroy(m->backend);
    free(m);
}

const char *sd_model_device(const sd_model *m, const char *component) {
    if (!m || !component || !m->backend) return "cpu";
    oir_backend *be = !strcmp(component, "unet")           ? unet_backend(m->unet)
                      : !strcmp(component, "vae")          ? vae_backend(m->vae)
                      : !strcmp(component, "text_encoder") ? clip_text_backend(m->text_encoder)
                                                           : NULL;
    return be && be == m->backend ? m->device : "cpu";
}

/* The UNet, the VAE and the text encoder onto p->device, one backend
 * (models/unet.h unet_bind, vae_bind, clip_text_bind). */
static int place_unet(sd_model *m, const char *device, oir_error *err) {
    snprintf(m->device, sizeof m->device, "cpu");
    if (!device || !(m->unet || m->vae || m->text_encoder)) return OIR_OK;
    be_device_spec spec;
    int rc = be_parse_device(device, &spec, err);
    if (rc || spec.kind == BE_CPU) return rc;
    if ((rc = be_create(&m->backend, &spec, err))) {
        oir_error_prefix(err, "device %s", device);
        return rc;
    }
    if ((m->unet && (rc = unet_bind(m->unet, m->backend, err))) ||
        (m->vae && (rc = vae_bind(m->vae, m->backend, err))) ||
        (m->text_encoder && (rc = clip_text_bind(m->text_encoder, m->backend, err))))
        return rc;
    snprintf(m->device, sizeof m->device, "vulkan:%d", spec.index);
    return OIR_OK;
}

int sd_model_load(sd_model **out, const char *path, const sd_load_params *params,
                  oir_error *err) {
    *out = NULL;
    sd_load_params p = params ? *params : sd_load_default_params();
    if (!p.components) p.components = SD_ALL;
    if (p.variant && !p.variant[0]) p.variant = NULL;
    sd_model *m = calloc(1, sizeof *m);
    if (!m || !(m->files = calloc(1, sizeof *m->files))) {
        free(m);
        return oir_fail(err, OIR_E_NOMEM, "loader: out of memory");
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    int rc;
    switch (model_path_detect(path)) {
    case MODEL_PATH_PICKLE: rc = loader_refuse_pickle(path, err); break;
    case MODEL_PATH_DIFFUSERS:
        m->source = SD_SOURCE_DIFFUSERS;
        rc = load_diffusers(m, path, &p, err);
        break;
    case MODEL_PATH_SINGLE_FILE:
        m->source = SD_SOURCE_SINGLE_FILE;
        rc = sd_load_single(m, path, &p, err);
        break;
    case MODEL_PATH_COMPONENT:
    case MODEL_PATH_CLIP:
        rc = oir_fail(err, OIR_E_FORMAT,
                      "%s: one model's folder, not a Stable Diffusion pipeline: give the folder "
                      "that holds model_index.json, or a single-file .safetensors checkpoint",
                      path);
        break;
    default:
        if (!sd_is_file(path) && !sd_is_dir(path)) {
            struct stat sb;
            if (stat(path, &sb) == 0)
                rc = oir_fail(err, OIR_E_IO, "%s: not a regular file or a folder", path);
            else
                rc = oir_fail(err, OIR_E_IO, "%s: no such file or folder", path);
        } else {
            rc = oir_fail(err, OIR_E_FORMAT,
                          "%s: neither a diffusers folder (no model_index.json) nor a .safetensors "
                          "checkpoint",
                          path);
        }
    }
    if (rc == OIR_OK) rc = sd_check_components(m, err);
    if (rc == OIR_OK) rc = collect_unused(m->files, err);
    if (rc == OIR_OK) rc = place_unet(m, p.device, err);
    if (rc) {
        sd_model_free(m);
        return rc;
    }
    *out = m;
    return OIR_OK;
}

int sd_model_unused_count(const sd_model *m) { return m->files->n_unused; }
const char *sd_model_unused_at(const sd_model *m, int i) {
    return i >= 0 && i < m->files->n_unused ? m->files->unused[i] : NULL;
}
int sd_model_other_count(const sd_model *m) { return m->files->other_count; }

const weights *sd_model_weights(const sd_model *m, const char *component) {
    if (!strcmp(component, "unet")) return m->files->unet;
    if (!strcmp(component, "vae")) return m->files->vae;
    if (!strcmp(component, "text_encoder")) return m->files->text;
    return NULL;
}

/* ---- CLIP scorer ---------------------------------------------------------------- */

struct clip_model_files {
    st_file *files[SD_PLAN_MAX_FILES];
    int nfiles;
    weights *w;
};

int clip_model_share_device(clip_model *m, const sd_model *sd, oir_error *err) {
    snprintf(m->device, sizeof m->device, "cpu");
    if (!sd || !sd->backend) return OIR_OK;
    int rc = clip_text_bind(m->text, sd->backend, err);
    if (!rc) rc = clip_vision_bind(m->vision, sd->backend, err);
    if (rc) { /* both back on CPU backends of their own */
        oir_error ignore;
        clip_text_bind(m->text, NULL, &ignore);
        return oir_error_prefix(err, "%s", m->path);
    }
    snprintf(m->device, sizeof m->device, "%s", sd->device);
    return OIR_OK;
}

const char *clip_model_device(const clip_model *m) { return m && m->device[0] ? m->device : "cpu"; }

void clip_model_free(clip_model *m) {
    if (!m) return;
    tokenizer_free(m->tokenizer);
    clip_text_free(m->text);
    clip_vision_free(m->vision);
    if (m->files) {
        weights_free(m->files->w);
        for (int i = 0; i < m->files->nfiles; i++) st_close(m->files->files[i]);
        free(m->files);
    }
    free(m);
}

int clip_model_load(clip_model **out, const char *dir, oir_error *err) {
    *out = NULL;
    sd_plan plan = {0};
    clip_model *m = calloc(1, sizeof *m);
    if (!m || !(m->files = calloc(1, sizeof *m->files))) {
        free(m);
        return oir_fail(err, OIR_E_NOMEM, "loader: out of memory");
    }
    snprintf(m->path, sizeof m->path, "%s", dir);
    int rc = OIR_OK;
    model_path_kind kind = model_path_detect(dir);
    if (kind == MODEL_PATH_PICKLE) {
        rc = loader_refuse_pickle(dir, err);
        goto cleanup;
    }
    char cfg[1200];
    model_config mc;
    if (kind != MODEL_PATH_CLIP && sd_is_dir(dir) && sd_join(cfg, sizeof cfg, dir, "config.json") &&
        sd_is_file(cfg)) { /* a config.json that does not read: say why */
        if ((rc = model_config_read(&mc, cfg, err))) goto cleanup;
        model_config_free(&mc);
    }
    if (kind != MODEL_PATH_CLIP) {
        rc = oir_fail(err, sd_is_dir(dir) ? OIR_E_FORMAT : OIR_E_IO,
                      "%s: not a Hugging Face CLIP folder (config.json with model_type \"clip\")",
                      dir);
        goto cleanup;
    }
    if ((rc = sd_plan_folder(&plan, dir, NULL, err))) goto cleanup;
    const sd_component_plan *c = &plan.comp[0];
    if (!c->nfiles) {
        rc = c->pickle_only ? loader_refuse_pickle(dir, err)
                            : oir_fail(err, OIR_E_IO, "%s: no model.safetensors", dir);
        goto cleanup;
    }
    for (int i = 0; i < c->nfiles; i++) {
        if ((rc = st_open(&m->files->files[i], c->files[i], err))) goto cleanup;
        m->files->nfiles++;
    }
    weights_opts o = {.component = "clip"};
    clip_text_config tc;
    clip_vision_config vc;
    if ((rc = weights_open(&m->files->w, m->files->files, m->files->nfiles, &o, err)) ||
        (rc = clip_text_config_load(&tc, c->config, err)) ||
        (rc = clip_vision_config_load(&vc, c->config, err)) ||
        (rc = clip_text_load(&m->text, &tc, m->files->w, 1, err)) ||
        (rc = clip_vision_load(&m->vision, &vc, m->files->w, 1, err)))
        goto cleanup;
    weights_ignore(m->files->w, "text_model.embeddings.position_ids");
    weights_ignore(m->files->w, "vision_model.embeddings.position_ids");
    weights_ignore(m->files->w, "logit_scale"); /* the scorer uses plain cosines */
    if ((rc = weights_finish(m->files->w, err))) goto cleanup;
    if ((rc = tokenizer_load(&m->tokenizer, dir, err))) goto cleanup;
    if (tokenizer_vocab_size(m->tokenizer) > tc.vocab_size) {
        rc = oir_fail(err, OIR_E_SHAPE, "%s: the tokenizer has %d ids, the text model's vocab_size is %d",
                      dir, tokenizer_vocab_size(m->tokenizer), tc.vocab_size);
        goto cleanup;
    }
    char p[1200];
    if (sd_join(p, sizeof p, dir, "preprocessor_config.json") && sd_is_file(p))
        rc = clip_preprocess_config_load(&m->preprocess, p, err);
    else
        m->preprocess = clip_preprocess_config_default();
cleanup:
    sd_plan_free(&plan);
    if (rc) {
        clip_model_free(m);
        return rc;
    }
    *out = m;
    return OIR_OK;
}

int clip_model_unused_count(const clip_model *m) { return weights_unused_count(m->files->w); }
const char *clip_model_unused_at(const clip_model *m, int i) {
    return weights_unused_at(m->files->w, i);
}

/* sample_size of <dir>/<comp>/config.json, 0 when absent (int or [n, n]). */
static int config_sample_size(const char *dir, const char *comp, int *out, oir_error *err) {
    char path[1200];
    *out = 0;
    if (snprintf(path, sizeof path, "%s/%s/config.json", dir, comp) >= (int)sizeof path)
        return OIR_OK;
    struct stat sb;
    if (stat(path, &sb) != 0) return OIR_OK;
    model_config c;
    int rc = model_config_read(&c, path, err);
    if (rc) return rc;
    int v[2] = {0, 0}, n = 0, is_list = 0;
    rc = model_config_ints(&c, "sample_size", v, 2, &n, &is_list, err);
    model_config_free(&c);
    if (rc) return rc;
    if (n == 2 && v[0] != v[1])
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s: sample_size [%d, %d] is not square; give the size explicitly", path, v[0], v[1]);
    if (n >= 1 && v[0] > 0 && v[0] > CFG_MAX_IMAGE_SIZE)
        return oir_fail(err, OIR_E_FORMAT, "%s: sample_size = %d, expected at most %d", path, v[0],
                        CFG_MAX_IMAGE_SIZE);
    if (n >= 1 && v[0] > 0) *out = v[0];
    return OIR_OK;
}

int sd_model_native_size(const sd_model *m, const char *config_dir, int *size, oir_error *err) {
    int f = vae_downscale(&m->vae->cfg);
    *size = 64 * f;
    const char *dir = m->source == SD_SOURCE_DIFFUSERS ? m->path : config_dir;
    if (!dir) return OIR_OK;
    int s = 0, rc = config_sample_size(dir, "unet", &s, err);
    if (rc) return rc;
    if (s > 0) {
        if ((long long)s * f > CFG_MAX_IMAGE_SIZE)
            return oir_fail(err, OIR_E_FORMAT,
                            "%s/unet/config.json: sample_size %d x the VAE factor %d = %lld pixels, "
                            "expected at most %d",
                            dir, s, f, (long long)s * f, CFG_MAX_IMAGE_SIZE);
        *size = s * f;
        return OIR_OK;
    }
    if ((rc = config_sample_size(dir, "vae", &s, err))) return rc;
    if (s > 0) *size = s;
    return OIR_OK;
}
