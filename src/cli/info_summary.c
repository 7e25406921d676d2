/* oir info: the summary printed first — what kind of model a path is, its
 * components with their parameter counts and dtypes, the tokenizer it would
 * use, its native image size and a guess at the Stable Diffusion version —
 * and the tensor listing (--tensors). Reads headers and configs only: no
 * weights are converted and no model is built. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/info.h"
#include "io/safetensors.h"
#include "models/ldm_names.h"
#include "models/loader.h"
#include "models/model_config.h"
#include "models/tokenizer.h"

#define UNET_P "model.diffusion_model."
#define VAE_P "first_stage_model."
#define TEXT_P "cond_stage_model.transformer."

/* What the weight files of one component hold. */
typedef struct {
    const char *name;
    int tensors;
    long long params;   /* elements of floating-point tensors */
    long long buffers;  /* elements of integer / bool tensors (position_ids, ...) */
    double bytes;
    int by_type[DT_COUNT];
} comp_stats;

static int is_float(dtype t) { return t == DT_F32 || t == DT_F16 || t == DT_BF16 || t == DT_F64; }

static void stats_add(comp_stats *s, const tensor *t) {
    long long n = tensor_numel(t);
    if (is_float(t->type)) s->params += n;
    else s->buffers += n;
    s->bytes += (double)tensor_nbytes(t);
    s->by_type[t->type]++;
    s->tensors++;
}

/* "F16" or "F32 (68 tensors), I64 (1)" */
static void dtypes_str(const comp_stats *s, char *buf, size_t cap) {
    int kinds = 0;
    for (int t = 0; t < DT_COUNT; t++) kinds += s->by_type[t] > 0;
    size_t used = 0;
    buf[0] = '\0';
    for (int t = 0; t < DT_COUNT; t++) {
        if (!s->by_type[t]) continue;
        int k = kinds == 1 ? snprintf(buf + used, cap - used, "%s", dtype_name((dtype)t))
                           : snprintf(buf + used, cap - used, "%s%s (%d tensor%s)", used ? ", " : "",
                                      dtype_name((dtype)t), s->by_type[t], s->by_type[t] == 1 ? "" : "s");
        if (k > 0 && used + (size_t)k < cap) used += (size_t)k;
    }
}

static void print_stats(const comp_stats *s) {
    char types[160];
    dtypes_str(s, types, sizeof types);
    int half = s->by_type[DT_F16] || s->by_type[DT_BF16];
    printf("  %-13s %lld parameters (%.2f M), %s%s", s->name, s->params, s->params / 1e6, types,
           half ? ", converted to F32 at load" : "");
    if (s->buffers) printf("; + %lld integer buffer values (not parameters)", s->buffers);
    printf("\n");
}

static void print_total(const comp_stats *s, int n) {
    long long total = 0;
    double bytes = 0;
    char names[200];
    size_t used = 0;
    names[0] = '\0';
    for (int i = 0; i < n; i++) {
        total += s[i].params;
        bytes += s[i].bytes;
        int k = snprintf(names + used, sizeof names - used, "%s%s", i ? " + " : "", s[i].name);
        if (k > 0 && used + (size_t)k < sizeof names) used += (size_t)k;
    }
    printf("  %-13s %lld parameters (%.2f M) in %s, %.1f MiB of files\n", "total", total, total / 1e6, names,
           bytes / 1048576.0);
}

/* Opens the files of a planned component and counts them. */
static int plan_stats(const sd_component_plan *c, comp_stats *s, oir_error *err) {
    for (int i = 0; i < c->nfiles; i++) {
        st_file *f = NULL;
        int rc = st_open(&f, c->files[i], err);
        if (rc) return rc;
        for (int k = 0; k < st_count(f); k++) stats_add(s, st_tensor_at(f, k));
        st_close(f);
    }
    return OIR_OK;
}

static const sd_component_plan *plan_get(const sd_plan *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->comp[i].name, name)) return &p->comp[i];
    return NULL;
}

/* An integer (or the first of a list) from a config file; def when absent or unreadable. */
static int config_int(const char *path, const char *key, int def, int *count) {
    model_config mc;
    oir_error e = {0};
    int v[8] = {0}, n = 0, is_list = 0;
    if (count) *count = 0;
    if (!path || !path[0] || model_config_read(&mc, path, &e) != OIR_OK) return def;
    int rc = model_config_ints(&mc, key, v, 8, &n, &is_list, &e);
    model_config_free(&mc);
    if (rc || n < 1) return def;
    if (count) *count = n;
    return v[0];
}

/* The version guess from the UNet's shapes and the pipeline. */
static void sd_version(char *buf, size_t cap, int xl, int cross, int base, int in_ch) {
    if (xl || cross == 2048)
        snprintf(buf, cap, "Stable Diffusion XL (two text encoders / cross-attention width 2048): oir runs SD 1.x "
                           "only");
    else if (cross == 1024)
        snprintf(buf, cap, "Stable Diffusion 2.x (OpenCLIP text encoder, cross-attention width 1024): oir runs SD "
                           "1.x only");
    else if (cross == 768 && base == 320)
        snprintf(buf, cap, "Stable Diffusion 1.x (CLIP ViT-L/14 text encoder, 320-channel UNet)%s",
                 in_ch == 9 ? ", inpainting (9 input channels)" : in_ch != 4 ? ", unusual input channels" : "");
    else
        snprintf(buf, cap, "SD 1.x architecture, custom size (UNet base width %d, cross-attention width %d; SD 1.x: "
                           "320 and 768)",
                 base, cross);
}

/* Tokenizer of a model whose text encoder has vocabulary V and no tokenizer
 * folder, as the loader chooses it. */
static void builtin_tokenizer_line(int V, int single) {
    const char *env = single ? getenv("OIR_TOKENIZER") : NULL;
    if (env && env[0]) printf("  %-13s folder %s ($OIR_TOKENIZER)\n", "tokenizer", env);
    else if (V >= 49408)
        printf("  %-13s built-in (%s; the model has no tokenizer folder%s)\n", "tokenizer", TOKENIZER_BUILTIN_NAME,
               single ? "; --config DIR or $OIR_TOKENIZER choose another" : "");
    else
        printf("  %-13s none: no tokenizer folder, and the text encoder's %d-token vocabulary does not fit the %s%s\n",
               "tokenizer", V, TOKENIZER_BUILTIN_NAME, single ? " (give --config DIR or $OIR_TOKENIZER)" : "");
}

/* ---- folders ------------------------------------------------------------------ */

static int summary_diffusers(const char *path, const sd_plan *plan, oir_error *err) {
    static const char *const order[] = {"unet", "vae", "text_encoder"};
    comp_stats st[3];
    int n = 0, rc;
    const sd_component_plan *unet = plan_get(plan, "unet"), *vae = plan_get(plan, "vae"),
                            *text = plan_get(plan, "text_encoder"), *tok = plan_get(plan, "tokenizer"),
                            *sched = plan_get(plan, "scheduler");
    int xl = strstr(plan->class_name, "XL") || plan_get(plan, "text_encoder_2");
    printf("%s: diffusers folder (%s)\n", path, plan->class_name[0] ? plan->class_name : "model_index.json");
    char version[300];
    int cross = config_int(unet ? unet->config : NULL, "cross_attention_dim", 0, NULL);
    int base = config_int(unet ? unet->config : NULL, "block_out_channels", 0, NULL);
    int in_ch = config_int(unet ? unet->config : NULL, "in_channels", 4, NULL);
    sd_version(version, sizeof version, xl, cross, base, in_ch);
    printf("  %-13s %s\n", "version", unet ? version : "unknown (no unet)");
    int vae_blocks = 0;
    config_int(vae ? vae->config : NULL, "block_out_channels", 0, &vae_blocks);
    int f = vae_blocks > 0 ? 1 << (vae_blocks - 1) : 8;
    int s = config_int(unet ? unet->config : NULL, "sample_size", 0, NULL);
    int vs = config_int(vae ? vae->config : NULL, "sample_size", 0, NULL);
    if (s > 0)
        printf("  %-13s %lldx%lld (unet sample_size %d x VAE factor %d)\n", "image size", (long long)s * f,
               (long long)s * f, s, f);
    else if (vs > 0) printf("  %-13s %dx%d (vae sample_size)\n", "image size", vs, vs);
    else printf("  %-13s %dx%d (no sample_size: 64 latents x VAE factor %d, as SD 1.x)\n", "image size", 64 * f,
                64 * f, f);
    for (int i = 0; i < 3; i++) {
        const sd_component_plan *c = plan_get(plan, order[i]);
        if (!c) {
            printf("  %-13s missing from model_index.json\n", order[i]);
            continue;
        }
        if (!c->nfiles) {
            printf("  %-13s %s\n", order[i],
                   c->pickle_only ? "pickle weights only (.bin/.ckpt): not loaded, see below"
                                  : "no weights file found");
            continue;
        }
        memset(&st[n], 0, sizeof st[n]);
        st[n].name = order[i];
        if ((rc = plan_stats(c, &st[n], err))) return rc;
        print_stats(&st[n++]);
    }
    if (tok) printf("  %-13s folder %s\n", "tokenizer", tok->dir);
    else builtin_tokenizer_line(config_int(text ? text->config : NULL, "vocab_size", 49408, NULL), 0);
    if (sched) printf("  %-13s %s (run as DDIM)\n", "scheduler", sched->class_name);
    print_total(st, n);
    return OIR_OK;
}

static int summary_clip(const char *path, const sd_plan *plan, oir_error *err) {
    const sd_component_plan *c = plan->n ? &plan->comp[0] : NULL;
    printf("%s: CLIP folder (%s; the search metric's scorer: --clip)\n", path,
           plan->class_name[0] ? plan->class_name : "CLIPModel");
    model_config mc;
    oir_error e = {0};
    int width = 0, patch = 0, side = 0;
    if (c && c->config[0] && model_config_read(&mc, c->config, &e) == OIR_OK) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(mc.root, "vision_config");
        const cJSON *w = v ? cJSON_GetObjectItemCaseSensitive(v, "hidden_size") : NULL;
        const cJSON *p = v ? cJSON_GetObjectItemCaseSensitive(v, "patch_size") : NULL;
        const cJSON *im = v ? cJSON_GetObjectItemCaseSensitive(v, "image_size") : NULL;
        width = cJSON_IsNumber(w) ? w->valueint : 768; /* transformers' CLIPVisionConfig defaults */
        patch = cJSON_IsNumber(p) ? p->valueint : 32;
        side = cJSON_IsNumber(im) ? im->valueint : 224;
        model_config_free(&mc);
    }
    const char *name = width == 768 && patch == 32   ? "ViT-B/32"
                       : width == 768 && patch == 16 ? "ViT-B/16"
                       : width == 1024 && patch == 14 ? "ViT-L/14"
                                                      : NULL;
    if (name) printf("  %-13s CLIP %s (vision width %d, patch %d)\n", "version", name, width, patch);
    else printf("  %-13s CLIP ViT, vision width %d, patch %d (not an OpenAI release size)\n", "version", width, patch);
    printf("  %-13s %dx%d (vision image_size)\n", "image size", side, side);
    comp_stats st[3] = {{.name = "text"}, {.name = "vision"}, {.name = "other"}};
    for (int i = 0; c && i < c->nfiles; i++) {
        st_file *f = NULL;
        int rc = st_open(&f, c->files[i], err);
        if (rc) return rc;
        for (int k = 0; k < st_count(f); k++) {
            const char *nm = st_name_at(f, k);
            int which = !strncmp(nm, "text_", 5) ? 0 : !strncmp(nm, "vision_", 7) || !strncmp(nm, "visual_", 7) ? 1 : 2;
            stats_add(&st[which], st_tensor_at(f, k));
        }
        st_close(f);
    }
    if (c && !c->nfiles)
        printf("  %-13s %s\n", "weights",
               c->pickle_only ? "pickle weights only (.bin): not loaded" : "no weights file found");
    if (st[2].tensors == 1) st[2].name = "logit_scale";
    int n = st[2].tensors ? 3 : 2;
    for (int i = 0; i < n; i++) print_stats(&st[i]);
    printf("  %-13s folder %s\n", "tokenizer", path);
    print_total(st, n);
    return OIR_OK;
}

static int summary_component(const char *path, const sd_plan *plan, oir_error *err) {
    const sd_component_plan *c = plan->n ? &plan->comp[0] : NULL;
    printf("%s: one component's folder (%s); --model takes the pipeline folder (model_index.json) or a "
           "single-file checkpoint\n",
           path, plan->class_name[0] ? plan->class_name : "?");
    if (!c || !c->nfiles) {
        printf("  %-13s %s\n", "weights",
               c && c->pickle_only ? "pickle weights only (.bin/.ckpt): not loaded" : "no weights file found");
        return OIR_OK;
    }
    comp_stats st = {.name = c->name};
    int rc = plan_stats(c, &st, err);
    if (rc) return rc;
    print_stats(&st);
    return OIR_OK;
}

int info_summary_folder(const char *path, const sd_plan *plan, oir_error *err) {
    switch (plan->kind) {
    case MODEL_PATH_DIFFUSERS: return summary_diffusers(path, plan, err);
    case MODEL_PATH_CLIP: return summary_clip(path, plan, err);
    default: return summary_component(path, plan, err);
    }
}

/* The refusal the loader gives a pipeline whose text encoder, UNet or VAE
 * (its loading order) has only pickle weights; OIR_OK when none has. */
int info_folder_pickle(const sd_plan *plan, oir_error *err) {
    static const char *const order[] = {"text_encoder", "unet", "vae", "clip"};
    for (int i = 0; i < 4; i++) {
        const sd_component_plan *c = plan_get(plan, order[i]);
        if (c && !c->nfiles && c->pickle_only) return loader_refuse_pickle(c->dir, err);
    }
    if (plan->kind != MODEL_PATH_DIFFUSERS && plan->n && !plan->comp[0].nfiles && plan->comp[0].pickle_only)
        return loader_refuse_pickle(plan->comp[0].dir, err);
    return OIR_OK;
}

/* ---- files ---------------------------------------------------------------------- */

static void print_listing(const st_file *f) {
    char shape[128];
    printf("%-64s %-5s %s\n", "tensor", "dtype", "shape");
    for (int i = 0; i < st_count(f); i++) {
        const tensor *t = st_tensor_at(f, i);
        printf("%-64s %-5s %s\n", st_name_at(f, i), dtype_name(t->type), tensor_shape_str(t, shape, sizeof shape));
    }
}

int info_folder_tensors(const sd_plan *plan, oir_error *err) {
    for (int i = 0; i < plan->n; i++)
        for (int k = 0; k < plan->comp[i].nfiles; k++) {
            st_file *f = NULL;
            int rc = st_open(&f, plan->comp[i].files[k], err);
            if (rc) return rc;
            printf("\n%s: %s (%d tensors)\n", plan->comp[i].name, plan->comp[i].files[k], st_count(f));
            print_listing(f);
            st_close(f);
        }
    return OIR_OK;
}

static int shape_dim(const st_file *f, const char *name, int d) {
    const tensor *t = st_find(f, name);
    return t && t->ndim > d ? (int)t->shape[d] : 0;
}

/* A single-file checkpoint (or any .safetensors file). */
void info_summary_file(const char *path, const st_file *f, int tensors) {
    char why[256];
    ldm_arch arch = ldm_detect(f, why, sizeof why);
    if (arch == LDM_ARCH_UNKNOWN) {
        comp_stats st = {.name = "tensors"};
        for (int i = 0; i < st_count(f); i++) stats_add(&st, st_tensor_at(f, i));
        printf("%s: safetensors file, not a Stable Diffusion checkpoint (%s)\n", path, why);
        print_stats(&st);
        printf("  %-13s %d tensors, %.1f MiB of data\n", "size", st.tensors, st.bytes / 1048576.0);
    } else {
        printf("%s: single-file LDM checkpoint (%s)\n", path, why);
        char version[300];
        if (arch == LDM_ARCH_SD1) {
            int cross = shape_dim(f, UNET_P "middle_block.1.transformer_blocks.0.attn2.to_k.weight", 1);
            char name[160];
            for (int i = 1; !cross && i < 16; i++) {
                snprintf(name, sizeof name, UNET_P "input_blocks.%d.1.transformer_blocks.0.attn2.to_k.weight", i);
                cross = shape_dim(f, name, 1);
            }
            sd_version(version, sizeof version, 0, cross, shape_dim(f, UNET_P "input_blocks.0.0.weight", 0),
                       shape_dim(f, UNET_P "input_blocks.0.0.weight", 1));
        } else {
            snprintf(version, sizeof version, "%s: oir runs SD 1.x only", ldm_arch_name(arch));
        }
        printf("  %-13s %s\n", "version", version);
        int vae_blocks = 0;
        char name[160];
        for (; vae_blocks < 8; vae_blocks++) {
            snprintf(name, sizeof name, VAE_P "encoder.down.%d.block.0.conv1.weight", vae_blocks);
            if (!st_find(f, name)) break;
        }
        int fac = vae_blocks > 0 ? 1 << (vae_blocks - 1) : 8;
        printf("  %-13s %dx%d (no config: 64 latents x VAE factor %d, as SD 1.x; --config DIR takes a diffusers "
               "folder's sample_size)\n",
               "image size", 64 * fac, 64 * fac, fac);
        comp_stats st[4] = {{.name = "unet"}, {.name = "vae"}, {.name = "text_encoder"}, {.name = "other"}};
        for (int i = 0; i < st_count(f); i++) {
            const char *nm = st_name_at(f, i);
            int which = !strncmp(nm, UNET_P, strlen(UNET_P))   ? 0
                        : !strncmp(nm, VAE_P, strlen(VAE_P))   ? 1
                        : !strncmp(nm, TEXT_P, strlen(TEXT_P)) ? 2
                                                               : 3;
            stats_add(&st[which], st_tensor_at(f, i));
        }
        for (int i = 0; i < 3; i++) {
            if (st[i].tensors) print_stats(&st[i]);
            else printf("  %-13s missing (no %s* tensors)\n", st[i].name,
                        i == 0 ? UNET_P : i == 1 ? VAE_P : TEXT_P);
        }
        if (st[3].tensors)
            printf("  %-13s %d tensors outside the three models (EMA copies, schedule buffers): not loaded\n",
                   "other", st[3].tensors);
        const tensor *emb = st_find(f, TEXT_P "text_model.embeddings.token_embedding.weight");
        if (!emb) emb = st_find(f, TEXT_P "embeddings.token_embedding.weight");
        if (emb && emb->ndim == 2) builtin_tokenizer_line((int)emb->shape[0], 1);
        print_total(st, 3);
    }
    if (tensors) {
        printf("\n");
        print_listing(f);
    } else {
        printf("(--tensors lists the %d tensors)\n", st_count(f));
    }
}
