/* diffusers -> original LDM checkpoint names: tables for the fixed renames,
 * rules (from the block layout) for the indices. */
#include "models/ldm_names.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *from, *to;
} name_rule;

/* UNet layers outside the blocks. */
static const name_rule unet_top[] = {
    {"time_embedding.linear_1.", "time_embed.0."},
    {"time_embedding.linear_2.", "time_embed.2."},
    {"class_embedding.linear_1.", "label_emb.0.0."},
    {"class_embedding.linear_2.", "label_emb.0.2."},
    {"conv_in.", "input_blocks.0.0."},
    {"conv_norm_out.", "out.0."},
    {"conv_out.", "out.2."},
};

/* ResnetBlock2D (UNet) -> ResBlock. */
static const name_rule unet_resnet[] = {
    {"norm1.", "in_layers.0."},        {"conv1.", "in_layers.2."},
    {"time_emb_proj.", "emb_layers.1."}, {"norm2.", "out_layers.0."},
    {"conv2.", "out_layers.3."},       {"conv_shortcut.", "skip_connection."},
};

/* VAE layers outside the blocks (the rest keep their names). */
static const name_rule vae_top[] = {
    {"encoder.conv_in.", "encoder.conv_in."},
    {"encoder.conv_out.", "encoder.conv_out."},
    {"encoder.conv_norm_out.", "encoder.norm_out."},
    {"decoder.conv_in.", "decoder.conv_in."},
    {"decoder.conv_out.", "decoder.conv_out."},
    {"decoder.conv_norm_out.", "decoder.norm_out."},
    {"quant_conv.", "quant_conv."},
    {"post_quant_conv.", "post_quant_conv."},
};

/* ResnetBlock2D (VAE) -> ResnetBlock. */
static const name_rule vae_resnet[] = {
    {"norm1.", "norm1."}, {"conv1.", "conv1."}, {"norm2.", "norm2."},
    {"conv2.", "conv2."}, {"conv_shortcut.", "nin_shortcut."},
};

/* VAE mid-block attention (both diffusers spellings) -> AttnBlock. */
static const name_rule vae_attn[] = {
    {"group_norm.", "norm."}, {"query.", "q."}, {"key.", "k."}, {"value.", "v."},
    {"proj_attn.", "proj_out."}, {"to_q.", "q."}, {"to_k.", "k."}, {"to_v.", "v."},
    {"to_out.0.", "proj_out."},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *ldm_prefix(ldm_component c) {
    switch (c) {
    case LDM_UNET: return "model.diffusion_model.";
    case LDM_VAE: return "first_stage_model.";
    case LDM_TEXT: return "cond_stage_model.transformer.";
    }
    return "";
}

/* Consumes `lit` at *p. */
static int eat(const char **p, const char *lit) {
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n)) return 0;
    *p += n;
    return 1;
}

/* Consumes "<digits>." at *p. */
static int eat_index(const char **p, int *out) {
    const char *s = *p;
    int v = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 6) v = v * 10 + (*s++ - '0'), digits++;
    if (!digits || *s != '.') return 0;
    *out = v;
    *p = s + 1;
    return 1;
}

/* A table entry whose `from` starts rest; *tail is what follows it. */
static const name_rule *match(const name_rule *t, size_t n, const char *rest, const char **tail) {
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(t[i].from);
        if (!strncmp(rest, t[i].from, len)) {
            *tail = rest + len;
            return &t[i];
        }
    }
    return NULL;
}

/* snprintf into buf; NULL on truncation. */
static const char *out(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *out(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap ? buf : NULL;
}

static const char *unet_resnet_name(const char *base, const char *rest, char *buf, size_t cap) {
    const char *tail;
    const name_rule *r = match(unet_resnet, COUNT(unet_resnet), rest, &tail);
    return r ? out(buf, cap, "%s%s%s", base, r->to, tail) : NULL;
}

/* Resnets of down block i (up block nb-1-i has one more). */
static int unet_layers(const ldm_layout *l, int i) {
    return l->layers[i] > 0 ? l->layers[i] : l->layers_per_block;
}

static const char *map_unet(const ldm_layout *l, const char *name, char *buf, size_t cap) {
    const char *p = name, *tail;
    const name_rule *r = match(unet_top, COUNT(unet_top), name, &tail);
    if (r) return out(buf, cap, "%s%s", r->to, tail);
    int nb = l->num_blocks, i, j;
    char base[64];
    if (nb < 1 || nb > LDM_MAX_BLOCKS) return NULL;
    for (int k = 0; k < nb; k++)
        if (unet_layers(l, k) < 1) return NULL;
    if (eat(&p, "down_blocks.")) {
        if (!eat_index(&p, &i) || i >= nb) return NULL;
        int first = 1, L = unet_layers(l, i); /* input_blocks index of the block's first resnet */
        for (int k = 0; k < i; k++) first += unet_layers(l, k) + 1;
        if (eat(&p, "resnets.")) {
            if (!eat_index(&p, &j) || j >= L) return NULL;
            snprintf(base, sizeof base, "input_blocks.%d.0.", first + j);
            return unet_resnet_name(base, p, buf, cap);
        }
        if (eat(&p, "attentions.")) {
            if (!eat_index(&p, &j) || j >= L) return NULL;
            return out(buf, cap, "input_blocks.%d.1.%s", first + j, p);
        }
        if (eat(&p, "downsamplers.0.conv.") && i < nb - 1)
            return out(buf, cap, "input_blocks.%d.0.op.%s", first + L, p);
        return NULL;
    }
    if (eat(&p, "mid_block.")) {
        if (eat(&p, "resnets.")) {
            if (!eat_index(&p, &j) || j > 1) return NULL;
            return unet_resnet_name(j ? "middle_block.2." : "middle_block.0.", p, buf, cap);
        }
        if (eat(&p, "attentions.0.")) return out(buf, cap, "middle_block.1.%s", p);
        return NULL;
    }
    if (eat(&p, "up_blocks.")) {
        if (!eat_index(&p, &i) || i >= nb) return NULL;
        int first = 0, L = unet_layers(l, nb - 1 - i); /* output_blocks index of resnet 0 */
        for (int k = 0; k < i; k++) first += unet_layers(l, nb - 1 - k) + 1;
        if (eat(&p, "resnets.")) {
            if (!eat_index(&p, &j) || j > L) return NULL;
            snprintf(base, sizeof base, "output_blocks.%d.0.", first + j);
            return unet_resnet_name(base, p, buf, cap);
        }
        if (eat(&p, "attentions.")) {
            if (!eat_index(&p, &j) || j > L) return NULL;
            return out(buf, cap, "output_blocks.%d.1.%s", first + j, p);
        }
        if (eat(&p, "upsamplers.0.conv.") && i < nb - 1)
            return out(buf, cap, "output_blocks.%d.%d.conv.%s", first + L,
                       l->up_has_attn[i] ? 2 : 1, p);
        return NULL;
    }
    return NULL;
}

static const char *vae_resnet_name(const char *base, const char *rest, char *buf, size_t cap) {
    const char *tail;
    const name_rule *r = match(vae_resnet, COUNT(vae_resnet), rest, &tail);
    return r ? out(buf, cap, "%s%s%s", base, r->to, tail) : NULL;
}

/* "mid_block...." of the encoder or decoder (`side` = "encoder"/"decoder"). */
static const char *vae_mid(const char *side, const char *p, char *buf, size_t cap) {
    int j;
    char base[64];
    const char *tail;
    if (eat(&p, "resnets.")) {
        if (!eat_index(&p, &j) || j > 1) return NULL;
        snprintf(base, sizeof base, "%s.mid.block_%d.", side, j + 1);
        return vae_resnet_name(base, p, buf, cap);
    }
    if (eat(&p, "attentions.0.")) {
        const name_rule *r = match(vae_attn, COUNT(vae_attn), p, &tail);
        return r ? out(buf, cap, "%s.mid.attn_1.%s%s", side, r->to, tail) : NULL;
    }
    return NULL;
}

static const char *map_vae(const ldm_layout *l, const char *name, char *buf, size_t cap) {
    const char *p = name, *tail;
    const name_rule *r = match(vae_top, COUNT(vae_top), name, &tail);
    if (r) return out(buf, cap, "%s%s", r->to, tail);
    int nb = l->num_blocks, i, j;
    char base[64];
    if (nb < 1 || nb > LDM_MAX_BLOCKS) return NULL;
    if (eat(&p, "encoder.")) {
        if (eat(&p, "mid_block.")) return vae_mid("encoder", p, buf, cap);
        if (!eat(&p, "down_blocks.") || !eat_index(&p, &i) || i >= nb) return NULL;
        if (eat(&p, "resnets.")) {
            if (!eat_index(&p, &j)) return NULL;
            snprintf(base, sizeof base, "encoder.down.%d.block.%d.", i, j);
            return vae_resnet_name(base, p, buf, cap);
        }
        if (eat(&p, "downsamplers.0.conv."))
            return out(buf, cap, "encoder.down.%d.downsample.conv.%s", i, p);
        return NULL;
    }
    if (eat(&p, "decoder.")) {
        if (eat(&p, "mid_block.")) return vae_mid("decoder", p, buf, cap);
        if (!eat(&p, "up_blocks.") || !eat_index(&p, &i) || i >= nb) return NULL;
        if (eat(&p, "resnets.")) {
            if (!eat_index(&p, &j)) return NULL;
            snprintf(base, sizeof base, "decoder.up.%d.block.%d.", nb - 1 - i, j);
            return vae_resnet_name(base, p, buf, cap);
        }
        if (eat(&p, "upsamplers.0.conv."))
            return out(buf, cap, "decoder.up.%d.upsample.conv.%s", nb - 1 - i, p);
        return NULL;
    }
    return NULL;
}

static const char *map_text(const ldm_layout *l, const char *name, char *buf, size_t cap) {
    const char *p = name;
    if (!eat(&p, "text_model.")) return NULL;
    return out(buf, cap, "%s", l->text_legacy ? p : name);
}

const char *ldm_map_name(const void *ctx, const char *name, char *buf, size_t cap) {
    const ldm_layout *l = ctx;
    if (!l || !name || !buf || !cap) return NULL;
    switch (l->component) {
    case LDM_UNET: return map_unet(l, name, buf, cap);
    case LDM_VAE: return map_vae(l, name, buf, cap);
    case LDM_TEXT: return map_text(l, name, buf, cap);
    }
    return NULL;
}

int ldm_vae_reshape_ok(const char *name) {
    static const char *const proj[] = {"query.weight", "key.weight", "value.weight",
                                       "proj_attn.weight", "to_q.weight", "to_k.weight",
                                       "to_v.weight", "to_out.0.weight"};
    const char *p = strstr(name, "mid_block.attentions.");
    if (!p) return 0;
    p += strlen("mid_block.attentions.");
    int j;
    if (!eat_index(&p, &j)) return 0;
    for (size_t k = 0; k < COUNT(proj); k++)
        if (!strcmp(p, proj[k])) return 1;
    return 0;
}

/* ---- architecture detection ------------------------------------------------ */

static int has_prefix(const st_file *f, const char *prefix) {
    size_t n = strlen(prefix);
    for (int i = 0; i < st_count(f); i++)
        if (!strncmp(st_name_at(f, i), prefix, n)) return 1;
    return 0;
}

/* Width of the cross-attention context: attn2.to_k's input features. */
static long long cross_attention_dim(const st_file *f) {
    const char *pre = "model.diffusion_model.";
    size_t n = strlen(pre);
    for (int i = 0; i < st_count(f); i++) {
        const char *name = st_name_at(f, i);
        if (strncmp(name, pre, n)) continue;
        const char *s = strstr(name, ".attn2.to_k.weight");
        if (s && !s[strlen(".attn2.to_k.weight")]) {
            const tensor *t = st_tensor_at(f, i);
            return t->ndim == 2 ? (long long)t->shape[1] : -1;
        }
    }
    return 0;
}

ldm_arch ldm_detect(const st_file *f, char *why, size_t cap) {
    char dummy[8];
    if (!why || !cap) why = dummy, cap = sizeof dummy;
    why[0] = 0;
    if (has_prefix(f, "conditioner.embedders.")) {
        snprintf(why, cap, "conditioner.embedders.* keys (SDXL's text encoders)");
        return LDM_ARCH_SDXL;
    }
    if (!has_prefix(f, "model.diffusion_model.")) {
        snprintf(why, cap, "no model.diffusion_model.* keys");
        return LDM_ARCH_UNKNOWN;
    }
    if (has_prefix(f, "model.diffusion_model.label_emb.")) {
        snprintf(why, cap,
                 "model.diffusion_model.label_emb.* keys (a class-conditioned UNet: SDXL or SD 2.x "
                 "unCLIP)");
        return LDM_ARCH_SDXL;
    }
    long long ctx = cross_attention_dim(f);
    if (has_prefix(f, "cond_stage_model.model.")) {
        snprintf(why, cap,
                 "cond_stage_model.model.* keys (an OpenCLIP text encoder), cross-attention "
                 "width %lld",
                 ctx);
        return LDM_ARCH_SD2;
    }
    if (ctx == 1024) {
        snprintf(why, cap, "cross-attention width 1024 (SD 2.x's OpenCLIP ViT-H; SD 1.x has 768)");
        return LDM_ARCH_SD2;
    }
    if (ctx == 2048) {
        snprintf(why, cap, "cross-attention width 2048 (SDXL)");
        return LDM_ARCH_SDXL;
    }
    snprintf(why, cap, "model.diffusion_model.* UNet, cross-attention width %lld%s", ctx,
             has_prefix(f, "cond_stage_model.transformer.")
                 ? ", CLIP text encoder (cond_stage_model.transformer.*)"
                 : "");
    return LDM_ARCH_SD1;
}

const char *ldm_arch_name(ldm_arch a) {
    switch (a) {
    case LDM_ARCH_SD1: return "Stable Diffusion 1.x";
    case LDM_ARCH_SD2: return "Stable Diffusion 2.x";
    case LDM_ARCH_SDXL: return "Stable Diffusion XL";
    case LDM_ARCH_OTHER: return "another latent diffusion model";
    case LDM_ARCH_UNKNOWN: break;
    }
    return "not a Stable Diffusion checkpoint";
}
