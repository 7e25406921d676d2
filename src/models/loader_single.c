/* Single-file original SD 1.x checkpoints (.safetensors, CompVis LDM key
 * layout): architecture check, configs from the shapes (or a config folder),
 * names mapped through ldm_names. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/ldm_names.h"
#include "models/loader_impl.h"

#define UNET_P "model.diffusion_model."
#define VAE_P "first_stage_model."
#define TEXT_P "cond_stage_model.transformer."

static const tensor *findf(const st_file *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const tensor *findf(const st_file *f, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return n > 0 && (size_t)n < sizeof name ? st_find(f, name) : NULL;
}

static int has_prefix(const st_file *f, const char *prefix) {
    size_t n = strlen(prefix);
    for (int i = 0; i < st_count(f); i++)
        if (!strncmp(st_name_at(f, i), prefix, n)) return 1;
    return 0;
}

/* Dimension i of t as a config value. Shapes go up to 2^53 (a zero-size
 * tensor may have any other dims): values over INT_MAX become INT_MAX,
 * never a wrapped negative number, and the config check then refuses them
 * naming the field. */
static int dim(const tensor *t, int i) {
    return t->shape[i] > INT_MAX ? INT_MAX : (int)t->shape[i];
}

/* A tensor the inference needs, with ndim dims. */
static int need(const st_file *f, const tensor **t, int ndim, const char *name, oir_error *err) {
    *t = st_find(f, name);
    if (!*t) return oir_fail(err, OIR_E_MISSING, "%s: tensor %s is missing", st_path(f), name);
    if ((*t)->ndim != ndim) {
        char s[96];
        return oir_fail(err, OIR_E_SHAPE, "%s: tensor %s has shape %s, expected %d dims",
                        st_path(f), name, tensor_shape_str(*t, s, sizeof s), ndim);
    }
    return OIR_OK;
}

/* Said after every config problem of an inferred config. */
#define INFER_HINT                                                                               \
    "the config was inferred from the checkpoint's shapes with SD 1.x defaults (32 norm groups, " \
    "8 heads, CLIP heads of 64); for a model that differs, give its diffusers configs with "      \
    "config_dir (oir: --config DIR)"

/* UNet: SD 1.x defaults, sizes from the shapes (LDM's UNetModel: GroupNorm32
 * with 32 groups, num_heads 8 in every SD 1.x config). */
static int infer_unet(const st_file *f, unet_config *c, oir_error *err) {
    *c = unet_config_sd1();
    const tensor *t;
    int rc;
    if ((rc = need(f, &t, 4, UNET_P "input_blocks.0.0.weight", err))) return rc;
    c->block_out_channels[0] = dim(t, 0);
    c->in_channels = dim(t, 1);
    c->conv_in_kernel = dim(t, 2);
    if ((rc = need(f, &t, 4, UNET_P "out.2.weight", err))) return rc;
    c->out_channels = dim(t, 0);
    c->conv_out_kernel = dim(t, 2);
    if ((rc = need(f, &t, 2, UNET_P "time_embed.0.weight", err))) return rc;
    c->time_embed_dim = dim(t, 0);
    /* Walk input_blocks: resnets until a downsampler ("op") closes a level. */
    int level = 0, count = 0, idx = 1, linear = -1;
    for (;;) {
        if (findf(f, UNET_P "input_blocks.%d.0.op.weight", idx)) {
            if (!count || level + 1 >= UNET_MAX_BLOCKS) break;
            c->layers_per_block[level++] = count;
            count = 0;
            idx++;
            continue;
        }
        const tensor *r = findf(f, UNET_P "input_blocks.%d.0.in_layers.2.weight", idx);
        if (!r || r->ndim != 4) break;
        if (!count) {
            c->block_out_channels[level] = dim(r, 0);
            const tensor *pi = findf(f, UNET_P "input_blocks.%d.1.proj_in.weight", idx);
            c->down_attn[level] = pi != NULL;
            if (pi) linear = pi->ndim == 2;
        }
        count++;
        idx++;
    }
    if (!count)
        return oir_fail(err, OIR_E_FORMAT, "%s: cannot follow the UNet's input_blocks at index %d",
                        st_path(f), idx);
    c->layers_per_block[level] = count;
    c->n_blocks = level + 1;
    int n = c->n_blocks;
    for (int i = 0; i < n; i++) c->heads[i] = 8;
    /* Up blocks: output_blocks, level n-1-i has layers + 1 resnets. */
    int first = 0;
    for (int i = 0; i < n; i++) {
        c->up_attn[i] = findf(f, UNET_P "output_blocks.%d.1.proj_in.weight", first) != NULL;
        first += c->layers_per_block[n - 1 - i] + 1;
    }
    c->has_mid = findf(f, UNET_P "middle_block.1.proj_in.weight") != NULL;
    const tensor *pi = findf(f, UNET_P "middle_block.1.proj_in.weight");
    if (pi && linear < 0) linear = pi->ndim == 2;
    c->use_linear_projection = linear > 0;
    /* Context width: any attn2.to_k (C, ctx). */
    const tensor *k = findf(f, UNET_P "middle_block.1.transformer_blocks.0.attn2.to_k.weight");
    for (int i = 1; !k && i < idx; i++)
        k = findf(f, UNET_P "input_blocks.%d.1.transformer_blocks.0.attn2.to_k.weight", i);
    if (k && k->ndim == 2) c->cross_attention_dim = dim(k, 1);
    if ((rc = unet_config_check(c, st_path(f), err))) oir_error_prefix(err, "%s", INFER_HINT);
    return rc;
}

static int infer_vae(const st_file *f, vae_config *c, oir_error *err) {
    *c = vae_config_sd1();
    const tensor *t;
    int rc;
    if ((rc = need(f, &t, 4, VAE_P "encoder.conv_in.weight", err))) return rc;
    c->in_channels = dim(t, 1);
    if ((rc = need(f, &t, 4, VAE_P "decoder.conv_out.weight", err))) return rc;
    c->out_channels = dim(t, 0);
    if ((rc = need(f, &t, 4, VAE_P "post_quant_conv.weight", err))) return rc;
    c->latent_channels = dim(t, 0);
    int n = 0;
    while (n < VAE_MAX_BLOCKS && (t = findf(f, VAE_P "encoder.down.%d.block.0.conv1.weight", n)) &&
           t->ndim == 4)
        c->block_out_channels[n++] = dim(t, 0);
    if (!n) return oir_fail(err, OIR_E_MISSING, "%s: no VAE encoder blocks (%sencoder.down.0.*)",
                            st_path(f), VAE_P);
    c->n_blocks = n;
    int layers = 0;
    while (findf(f, VAE_P "encoder.down.0.block.%d.conv1.weight", layers)) layers++;
    c->layers_per_block = layers;
    if ((rc = vae_config_check(c, st_path(f), err))) oir_error_prefix(err, "%s", INFER_HINT);
    return rc;
}

/* tp: the text model's key prefix ("cond_stage_model.transformer.text_model."). */
static int infer_text(const st_file *f, const char *tp, clip_text_config *c, oir_error *err) {
    *c = clip_text_config_sd1();
    char name[256];
    const tensor *t;
    int rc;
    snprintf(name, sizeof name, "%sembeddings.token_embedding.weight", tp);
    if ((rc = need(f, &t, 2, name, err))) return rc;
    c->vocab_size = dim(t, 0);
    c->hidden_size = dim(t, 1);
    snprintf(name, sizeof name, "%sembeddings.position_embedding.weight", tp);
    if ((rc = need(f, &t, 2, name, err))) return rc;
    c->max_position_embeddings = dim(t, 0);
    int L = 0;
    while ((t = findf(f, "%sencoder.layers.%d.mlp.fc1.weight", tp, L)) && t->ndim == 2) {
        c->intermediate_size = dim(t, 0);
        L++;
    }
    c->num_hidden_layers = L;
    c->projection_dim = c->hidden_size;
    if (c->hidden_size % 64)
        return oir_fail(err, OIR_E_FORMAT,
                        "%s: text encoder hidden size %d is not a multiple of 64 (CLIP's head "
                        "size): %s",
                        st_path(f), c->hidden_size, INFER_HINT);
    c->num_attention_heads = c->hidden_size / 64;
    if ((rc = clip_text_config_check(c, st_path(f), err))) oir_error_prefix(err, "%s", INFER_HINT);
    return rc;
}

static int component_weights(sd_model *m, st_file *f, const char *component, const char *prefix,
                             const ldm_layout *layout, weights **w, oir_error *err) {
    if (!has_prefix(f, prefix))
        return oir_fail(err, OIR_E_MISSING, "%s: the checkpoint has no %s (no %s* tensors)",
                        st_path(f), component, prefix);
    weights_opts o = {.component = component,
                      .prefix = prefix,
                      .map = ldm_map_name,
                      .map_ctx = layout,
                      .map_ctx_size = sizeof *layout,
                      .reshape_ok = layout->component == LDM_VAE ? ldm_vae_reshape_ok : NULL};
    return weights_open(w, &f, 1, &o, err);
}

/* "<config_dir>/<sub>/<file>" when config_dir is set and the file exists. */
static const char *config_file(char *buf, size_t cap, const char *config_dir, const char *sub,
                               const char *file) {
    char d[1100];
    if (!config_dir || !sd_join(d, sizeof d, config_dir, sub) || !sd_join(buf, cap, d, file))
        return NULL;
    return sd_is_file(buf) ? buf : NULL;
}

int sd_load_single(sd_model *m, const char *path, const sd_load_params *p, oir_error *err) {
    st_file *f;
    int rc = sd_files_open(m->files, path, &f, err);
    if (rc) return rc;
    char why[256], cfgp[1200];
    ldm_arch arch = ldm_detect(f, why, sizeof why);
    if (arch != LDM_ARCH_SD1)
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s: %s (%s); oir runs Stable Diffusion 1.x checkpoints only", path,
                        arch == LDM_ARCH_UNKNOWN ? "not a Stable Diffusion checkpoint"
                                                 : ldm_arch_name(arch),
                        why);
    if (p->config_dir && !sd_is_dir(p->config_dir))
        return oir_fail(err, OIR_E_IO, "%s: config folder not found", p->config_dir);
    const char *cd = p->config_dir;
    sd_note(m, "checkpoint: %s (%s)", path, why);

    if (p->components & SD_TEXT_ENCODER) {
        ldm_layout l = {.component = LDM_TEXT};
        const char *tp = TEXT_P "text_model.";
        if (!st_find(f, TEXT_P "text_model.embeddings.token_embedding.weight") &&
            st_find(f, TEXT_P "embeddings.token_embedding.weight")) {
            l.text_legacy = 1; /* saved by an older transformers: no "text_model." */
            tp = TEXT_P;
        }
        clip_text_config cfg;
        const char *cp = config_file(cfgp, sizeof cfgp, cd, "text_encoder", "config.json");
        if ((rc = cp ? clip_text_config_load(&cfg, cp, err) : infer_text(f, tp, &cfg, err)) ||
            (rc = component_weights(m, f, "text_encoder", TEXT_P, &l, &m->files->text, err)) ||
            (rc = sd_build_text(m, &cfg, err)))
            return rc;
        sd_note(m, "text_encoder: %s, %d layers, width %d%s", cp ? cp : "SD 1.x config",
                cfg.num_hidden_layers, cfg.hidden_size, l.text_legacy ? " (keys without text_model.)" : "");
    }
    if (p->components & SD_UNET) {
        unet_config cfg;
        const char *cp = config_file(cfgp, sizeof cfgp, cd, "unet", "config.json");
        if ((rc = cp ? unet_config_load(&cfg, cp, err) : infer_unet(f, &cfg, err))) return rc;
        ldm_layout l = {.component = LDM_UNET, .num_blocks = cfg.n_blocks};
        if (cfg.n_blocks > LDM_MAX_BLOCKS)
            return oir_fail(err, OIR_E_UNSUPPORTED, "%s: %d UNet blocks", path, cfg.n_blocks);
        for (int i = 0; i < cfg.n_blocks; i++) {
            l.layers[i] = cfg.layers_per_block[i];
            l.up_has_attn[i] = (unsigned char)cfg.up_attn[i];
        }
        l.layers_per_block = cfg.layers_per_block[0];
        if ((rc = component_weights(m, f, "unet", UNET_P, &l, &m->files->unet, err)) ||
            (rc = sd_build_unet(m, &cfg, err)))
            return rc;
        sd_note(m, "unet: %s, %d blocks, context %d", cp ? cp : "SD 1.x config sized to the shapes",
                cfg.n_blocks, cfg.cross_attention_dim);
    }
    if (p->components & SD_VAE) {
        vae_config cfg;
        const char *cp = config_file(cfgp, sizeof cfgp, cd, "vae", "config.json");
        if ((rc = cp ? vae_config_load(&cfg, cp, err) : infer_vae(f, &cfg, err))) return rc;
        ldm_layout l = {.component = LDM_VAE, .num_blocks = cfg.n_blocks};
        if ((rc = component_weights(m, f, "vae", VAE_P, &l, &m->files->vae, err)) ||
            (rc = sd_build_vae(m, &cfg, err)))
            return rc;
        sd_note(m, "vae: %s, %d blocks", cp ? cp : "SD 1.x config sized to the shapes",
                cfg.n_blocks);
    }
    if ((rc = sd_load_scheduler(m, config_file(cfgp, sizeof cfgp, cd, "scheduler", "scheduler_config.json"),
                                "SD 1.x DDIM (scaled_linear 0.00085..0.012, steps_offset 1)", err)))
        return rc;
    if (p->components & SD_TOKENIZER) {
        char td[1200];
        const char *tok = p->tokenizer_dir;
        if (!tok && cd && sd_join(td, sizeof td, cd, "tokenizer") && sd_is_dir(td)) tok = td;
        if (!tok) tok = getenv("OIR_TOKENIZER");
        /* a single-file checkpoint has none: the built-in vocabulary if it fits */
        if ((rc = sd_load_tokenizer(m, tok && tok[0] ? tok : NULL, p->tokenizer_mode, err))) return rc;
    }
    for (int i = 0; i < st_count(f); i++) {
        const char *n = st_name_at(f, i);
        if (strncmp(n, UNET_P, strlen(UNET_P)) && strncmp(n, VAE_P, strlen(VAE_P)) &&
            strncmp(n, TEXT_P, strlen(TEXT_P)))
            m->files->other_count++;
    }
    return OIR_OK;
}
