/* Writes a random-weight Stable Diffusion 1.x diffusers folder, in C (no
 * Python: for machines that have only the working tree, scripts/gpu_check.sh).
 *
 *     build/release/tools/make_random_sd OUT_DIR [--small] [--fp32] [--seed N]
 *                                        [--tokenizer DIR] [--force] [--count]
 *
 * The layout and tensor names of tools/make_random_sd.py: model_index.json,
 * scheduler/ (DDIM with SD's settings), tokenizer/ (the real CLIP BPE files,
 * vocab.json and merges.txt copied from data/clip-tokenizer), text_encoder/
 * (CLIP ViT-L/14 text tower: 12 layers, 768 wide), unet/ (320/640/1280/1280,
 * layers_per_block 2, 8 heads, cross-attention 768), vae/ (128/256/512/512),
 * each config.json + *.safetensors under the diffusers 0.16.1 names; fp16
 * (half the bytes; the loader widens them to fp32) unless --fp32.
 * --small: the same block structure scaled down (UNet 32/64/64/64, one layer
 * per block; VAE 32 wide; a 2-layer, 32-wide text tower over the full CLIP
 * vocabulary), for tests and dry runs.
 *
 * Weights as the Python tool draws them: matrices and convolutions
 * ~ N(0, 1/fan_in), embeddings ~ N(0, 0.02), norm scales 1, biases 0, each
 * tensor from its own generator seeded by (seed, "part/name"), so a tensor's
 * values do not depend on the others (the numbers differ from torch's).
 * Normal-ish draws: the sum of four 16-bit uniforms, scaled to variance 1.
 * Outputs are meaningless; this is for loaders and benchmarks.
 *
 * Atomic: everything is written into a fresh hidden folder beside OUT_DIR and
 * renamed to OUT_DIR at the end; an existing OUT_DIR is refused unless
 * --force (then replaced by the same rename). --count prints the parameter
 * counts and writes nothing. Exit 0 on success, 1 on a failure, 2 on bad
 * arguments. */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/tensor.h"
#include "io/outfile.h"
#include "oir.h"

#define CLIP_VOCAB 49408
#define CLIP_POSITIONS 77
#define MAX_BLOCKS 4

/* The shapes of one SD 1.x model (the fields diffusers' configs name). */
typedef struct {
    int unet_ch[MAX_BLOCKS]; /* block_out_channels */
    int unet_layers;         /* layers_per_block */
    int unet_heads;          /* attention_head_dim (diffusers 0.16.1: the number of heads) */
    int cross_dim;           /* cross_attention_dim = the text tower's width */
    int unet_sample;         /* sample_size (latent side) */
    int vae_ch[MAX_BLOCKS];
    int vae_layers;
    int text_layers, text_heads, text_inter, text_proj;
} sd_shapes;

static const sd_shapes SD15 = {{320, 640, 1280, 1280}, 2, 8, 768, 64, {128, 256, 512, 512}, 2, 12, 12, 3072, 768};
static const sd_shapes SMALL = {{32, 64, 64, 64}, 1, 8, 32, 8, {32, 32, 32, 32}, 1, 2, 2, 64, 32};

typedef enum { T_PARAM = 0, T_POSITION_IDS } tensor_kind;

typedef struct {
    char name[112];
    int ndim;
    int64_t shape[4];
    tensor_kind kind;
} tensor_desc;

typedef struct {
    tensor_desc *t;
    int n, cap;
    int failed; /* out of memory */
} tensor_list;

static void add_tensor(tensor_list *l, tensor_kind kind, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void add_tensor(tensor_list *l, tensor_kind kind, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (l->failed) return;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 256;
        tensor_desc *t = realloc(l->t, (size_t)cap * sizeof *t);
        if (!t) {
            l->failed = 1;
            return;
        }
        l->t = t, l->cap = cap;
    }
    tensor_desc *d = &l->t[l->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->name, sizeof d->name, fmt, ap);
    va_end(ap);
    d->ndim = ndim, d->kind = kind;
    for (int i = 0; i < ndim; i++) d->shape[i] = shape[i];
}

/* "<p>.weight" / "<p>.bias" of a Linear (out, in), a Conv2d (out, in, k, k), a norm (c). */
static void linear(tensor_list *l, const char *p, int out, int in, int bias) {
    add_tensor(l, T_PARAM, 2, (int64_t[]){out, in}, "%s.weight", p);
    if (bias) add_tensor(l, T_PARAM, 1, (int64_t[]){out}, "%s.bias", p);
}
static void conv(tensor_list *l, const char *p, int out, int in, int k) {
    add_tensor(l, T_PARAM, 4, (int64_t[]){out, in, k, k}, "%s.weight", p);
    add_tensor(l, T_PARAM, 1, (int64_t[]){out}, "%s.bias", p);
}
static void norm(tensor_list *l, const char *p, int c) {
    add_tensor(l, T_PARAM, 1, (int64_t[]){c}, "%s.weight", p);
    add_tensor(l, T_PARAM, 1, (int64_t[]){c}, "%s.bias", p);
}

/* ResnetBlock2D; temb 0: none (the VAE's). */
static void resnet(tensor_list *l, const char *p, int in, int out, int temb) {
    char n[112];
    snprintf(n, sizeof n, "%s.norm1", p), norm(l, n, in);
    snprintf(n, sizeof n, "%s.conv1", p), conv(l, n, out, in, 3);
    if (temb) snprintf(n, sizeof n, "%s.time_emb_proj", p), linear(l, n, out, temb, 1);
    snprintf(n, sizeof n, "%s.norm2", p), norm(l, n, out);
    snprintf(n, sizeof n, "%s.conv2", p), conv(l, n, out, out, 3);
    if (in != out) snprintf(n, sizeof n, "%s.conv_shortcut", p), conv(l, n, out, in, 1);
}

/* Transformer2DModel (SD 1.x: 1x1-conv projections, one BasicTransformerBlock). */
static void transformer(tensor_list *l, const char *p, int c, int ctx) {
    char n[112];
    snprintf(n, sizeof n, "%s.norm", p), norm(l, n, c);
    snprintf(n, sizeof n, "%s.proj_in", p), conv(l, n, c, c, 1);
    snprintf(n, sizeof n, "%s.transformer_blocks.0.norm1", p), norm(l, n, c);
    const char *qkv[3] = {"to_q", "to_k", "to_v"};
    for (int i = 0; i < 3; i++) snprintf(n, sizeof n, "%s.transformer_blocks.0.attn1.%s", p, qkv[i]), linear(l, n, c, c, 0);
    snprintf(n, sizeof n, "%s.transformer_blocks.0.attn1.to_out.0", p), linear(l, n, c, c, 1);
    snprintf(n, sizeof n, "%s.transformer_blocks.0.norm2", p), norm(l, n, c);
    for (int i = 0; i < 3; i++)
        snprintf(n, sizeof n, "%s.transformer_blocks.0.attn2.%s", p, qkv[i]), linear(l, n, c, i ? ctx : c, 0);
    snprintf(n, sizeof n, "%s.transformer_blocks.0.attn2.to_out.0", p), linear(l, n, c, c, 1);
    snprintf(n, sizeof n, "%s.transformer_blocks.0.norm3", p), norm(l, n, c);
    snprintf(n, sizeof n, "%s.transformer_blocks.0.ff.net.0.proj", p), linear(l, n, 8 * c, c, 1);
    snprintf(n, sizeof n, "%s.transformer_blocks.0.ff.net.2", p), linear(l, n, c, 4 * c, 1);
    snprintf(n, sizeof n, "%s.proj_out", p), conv(l, n, c, c, 1);
}

/* UNet2DConditionModel, diffusers 0.16.1: CrossAttnDownBlock2D x (n-1) + DownBlock2D,
 * UNetMidBlock2DCrossAttn, UpBlock2D + CrossAttnUpBlock2D x (n-1). */
static void unet_tensors(tensor_list *l, const sd_shapes *s) {
    const int n = MAX_BLOCKS, *ch = s->unet_ch, temb = 4 * ch[0];
    char p[112];
    conv(l, "conv_in", ch[0], 4, 3);
    linear(l, "time_embedding.linear_1", temb, ch[0], 1);
    linear(l, "time_embedding.linear_2", temb, temb, 1);
    int out = ch[0];
    for (int i = 0; i < n; i++) {
        int in = out;
        out = ch[i];
        for (int j = 0; j < s->unet_layers; j++) {
            snprintf(p, sizeof p, "down_blocks.%d.resnets.%d", i, j), resnet(l, p, j ? out : in, out, temb);
            if (i < n - 1) snprintf(p, sizeof p, "down_blocks.%d.attentions.%d", i, j), transformer(l, p, out, s->cross_dim);
        }
        if (i < n - 1) snprintf(p, sizeof p, "down_blocks.%d.downsamplers.0.conv", i), conv(l, p, out, out, 3);
    }
    out = ch[n - 1];
    for (int i = 0; i < n; i++) {
        int prev = out, in = ch[n - 1 - (i + 1 < n ? i + 1 : n - 1)];
        out = ch[n - 1 - i];
        for (int j = 0; j <= s->unet_layers; j++) {
            int skip = j == s->unet_layers ? in : out, res_in = j ? out : prev;
            snprintf(p, sizeof p, "up_blocks.%d.resnets.%d", i, j), resnet(l, p, res_in + skip, out, temb);
            if (i > 0) snprintf(p, sizeof p, "up_blocks.%d.attentions.%d", i, j), transformer(l, p, out, s->cross_dim);
        }
        if (i < n - 1) snprintf(p, sizeof p, "up_blocks.%d.upsamplers.0.conv", i), conv(l, p, out, out, 3);
    }
    resnet(l, "mid_block.resnets.0", ch[n - 1], ch[n - 1], temb);
    transformer(l, "mid_block.attentions.0", ch[n - 1], s->cross_dim);
    resnet(l, "mid_block.resnets.1", ch[n - 1], ch[n - 1], temb);
    norm(l, "conv_norm_out", ch[0]);
    conv(l, "conv_out", 4, ch[0], 3);
}

/* UNetMidBlock2D of the VAE (diffusers 0.16.1 AttentionBlock names). */
static void vae_mid(tensor_list *l, const char *p, int c) {
    char n[112];
    snprintf(n, sizeof n, "%s.resnets.0", p), resnet(l, n, c, c, 0);
    snprintf(n, sizeof n, "%s.attentions.0.group_norm", p), norm(l, n, c);
    const char *lin[4] = {"query", "key", "value", "proj_attn"};
    for (int i = 0; i < 4; i++) snprintf(n, sizeof n, "%s.attentions.0.%s", p, lin[i]), linear(l, n, c, c, 1);
    snprintf(n, sizeof n, "%s.resnets.1", p), resnet(l, n, c, c, 0);
}

/* AutoencoderKL: 4 latent channels, DownEncoderBlock2D / UpDecoderBlock2D. */
static void vae_tensors(tensor_list *l, const sd_shapes *s) {
    const int n = MAX_BLOCKS, *ch = s->vae_ch, L = 4;
    char p[112];
    conv(l, "encoder.conv_in", ch[0], 3, 3);
    int out = ch[0];
    for (int i = 0; i < n; i++) {
        int in = out;
        out = ch[i];
        for (int j = 0; j < s->vae_layers; j++)
            snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j), resnet(l, p, j ? out : in, out, 0);
        if (i < n - 1) snprintf(p, sizeof p, "encoder.down_blocks.%d.downsamplers.0.conv", i), conv(l, p, out, out, 3);
    }
    vae_mid(l, "encoder.mid_block", ch[n - 1]);
    norm(l, "encoder.conv_norm_out", ch[n - 1]);
    conv(l, "encoder.conv_out", 2 * L, ch[n - 1], 3);
    conv(l, "decoder.conv_in", ch[n - 1], L, 3);
    out = ch[n - 1];
    for (int i = 0; i < n; i++) {
        int prev = out;
        out = ch[n - 1 - i];
        for (int j = 0; j <= s->vae_layers; j++)
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j), resnet(l, p, j ? out : prev, out, 0);
        if (i < n - 1) snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv", i), conv(l, p, out, out, 3);
    }
    vae_mid(l, "decoder.mid_block", ch[n - 1]);
    norm(l, "decoder.conv_norm_out", ch[0]);
    conv(l, "decoder.conv_out", 3, ch[0], 3);
    conv(l, "quant_conv", 2 * L, 2 * L, 1);
    conv(l, "post_quant_conv", L, L, 1);
}

/* CLIPTextModel (transformers): the embeddings, the position_ids buffer (int64), the layers. */
static void text_tensors(tensor_list *l, const sd_shapes *s) {
    const int D = s->cross_dim;
    char p[112];
    add_tensor(l, T_PARAM, 2, (int64_t[]){CLIP_VOCAB, D}, "text_model.embeddings.token_embedding.weight");
    add_tensor(l, T_PARAM, 2, (int64_t[]){CLIP_POSITIONS, D}, "text_model.embeddings.position_embedding.weight");
    add_tensor(l, T_POSITION_IDS, 2, (int64_t[]){1, CLIP_POSITIONS}, "text_model.embeddings.position_ids");
    const char *proj[4] = {"k_proj", "v_proj", "q_proj", "out_proj"};
    for (int i = 0; i < s->text_layers; i++) {
        for (int k = 0; k < 4; k++)
            snprintf(p, sizeof p, "text_model.encoder.layers.%d.self_attn.%s", i, proj[k]), linear(l, p, D, D, 1);
        snprintf(p, sizeof p, "text_model.encoder.layers.%d.layer_norm1", i), norm(l, p, D);
        snprintf(p, sizeof p, "text_model.encoder.layers.%d.mlp.fc1", i), linear(l, p, s->text_inter, D, 1);
        snprintf(p, sizeof p, "text_model.encoder.layers.%d.mlp.fc2", i), linear(l, p, D, s->text_inter, 1);
        snprintf(p, sizeof p, "text_model.encoder.layers.%d.layer_norm2", i), norm(l, p, D);
    }
    norm(l, "text_model.final_layer_norm", D);
}

static int64_t numel(const tensor_desc *d) {
    int64_t n = 1;
    for (int i = 0; i < d->ndim; i++) n *= d->shape[i];
    return n;
}

static int64_t param_count(const tensor_list *l) {
    int64_t n = 0;
    for (int i = 0; i < l->n; i++)
        if (l->t[i].kind == T_PARAM) n += numel(&l->t[i]);
    return n;
}

/* ---- random values ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The generator's start for one tensor: (seed, "part/name") through FNV-1a. */
static uint64_t tensor_seed(uint64_t seed, const char *part, const char *name) {
    uint64_t h = 0xCBF29CE484222325ull ^ (seed * 1000003ull);
    for (const char *s = part; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
    h = (h ^ '/') * 0x100000001B3ull;
    for (const char *s = name; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
    return h;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* What the Python tool's lazy_state does: biases 0, other 1-D tensors
 * (norm scales) 1, names with "embedding" N(0, 0.02), the rest
 * N(0, 1/fan_in); std 0 / value c for the constants. */
static void init_rule(const tensor_desc *d, float *std, float *constant) {
    *std = 0, *constant = 0;
    if (ends_with(d->name, "bias")) return;
    if (d->ndim == 1) {
        *constant = 1;
        return;
    }
    if (strstr(d->name, "embedding")) {
        *std = 0.02f;
        return;
    }
    int64_t fan_in = 1;
    for (int i = 1; i < d->ndim; i++) fan_in *= d->shape[i];
    *std = (float)(1.0 / sqrt((double)fan_in));
}

/* ---- writing ---------------------------------------------------------- */

typedef struct {
    uint64_t seed;
    int fp16;
    const char *part; /* "unet", ... */
} write_opts;

static size_t elem_bytes(const tensor_desc *d, int fp16) {
    return d->kind == T_POSITION_IDS ? 8 : fp16 ? 2 : 4;
}

#define CHUNK 65536

/* One tensor's bytes, streamed in chunks (nothing model-sized in memory). */
static int write_values(FILE *fp, const tensor_desc *d, const write_opts *o) {
    static union {
        uint16_t h[CHUNK];
        float f[CHUNK];
        int64_t i[CHUNK];
    } buf;
    int64_t n = numel(d);
    if (d->kind == T_POSITION_IDS) {
        for (int64_t i = 0; i < n; i++) buf.i[i] = i; /* (1, 77): 0..76 */
        return fwrite(buf.i, 8, (size_t)n, fp) == (size_t)n ? 0 : -1;
    }
    float std, constant;
    init_rule(d, &std, &constant);
    uint64_t s = tensor_seed(o->seed, o->part, d->name);
    const float scale = std * 1.7320508f / 65536.0f; /* sum of 4 uniforms on [0, 4): variance 4/12 */
    for (int64_t done = 0; done < n;) {
        size_t m = (size_t)(n - done < CHUNK ? n - done : CHUNK);
        for (size_t i = 0; i < m; i++) {
            float v = constant;
            if (std > 0) {
                uint64_t r = splitmix64(&s);
                int sum = (int)(r & 0xFFFF) + (int)((r >> 16) & 0xFFFF) + (int)((r >> 32) & 0xFFFF) + (int)(r >> 48);
                v = (float)(sum - 2 * 65536) * scale;
            }
            if (o->fp16) buf.h[i] = f32_to_f16(v);
            else buf.f[i] = v;
        }
        if (fwrite(o->fp16 ? (void *)buf.h : (void *)buf.f, o->fp16 ? 2 : 4, m, fp) != m) return -1;
        done += (int64_t)m;
    }
    return 0;
}

/* A safetensors file: the JSON header (padded with spaces to 8 bytes), then the tensors in list order. */
static int write_safetensors(const char *path, const tensor_list *l, const write_opts *o, oir_error *err) {
    size_t cap = 256 + (size_t)l->n * 200, len = 0;
    char *h = malloc(cap);
    if (!h) return oir_fail(err, OIR_E_NOMEM, "%s: out of memory", path);
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < l->n; i++) {
        const tensor_desc *d = &l->t[i];
        uint64_t bytes = (uint64_t)numel(d) * elem_bytes(d, o->fp16);
        const char *dt = d->kind == T_POSITION_IDS ? "I64" : o->fp16 ? "F16" : "F32";
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", d->name, dt);
        for (int k = 0; k < d->ndim; k++)
            len += (size_t)snprintf(h + len, cap - len, "%s%lld", k ? "," : "", (long long)d->shape[k]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                                (unsigned long long)(off + bytes));
        off += bytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        free(h);
        return oir_fail(err, OIR_E_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    uint8_t n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)len >> (8 * i));
    int bad = fwrite(n8, 1, 8, fp) != 8 || fwrite(h, 1, len, fp) != len;
    free(h);
    for (int i = 0; i < l->n && !bad; i++) bad = write_values(fp, &l->t[i], o) != 0;
    if (fclose(fp) != 0) bad = 1;
    return bad ? oir_fail(err, OIR_E_IO, "%s: write failed: %s", path, strerror(errno)) : OIR_OK;
}

static int write_text(const char *path, oir_error *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int write_text(const char *path, oir_error *err, const char *fmt, ...) {
    FILE *fp = fopen(path, "w");
    if (!fp) return oir_fail(err, OIR_E_IO, "%s: cannot create: %s", path, strerror(errno));
    va_list ap;
    va_start(ap, fmt);
    int bad = vfprintf(fp, fmt, ap) < 0;
    va_end(ap);
    if (fclose(fp) != 0) bad = 1;
    return bad ? oir_fail(err, OIR_E_IO, "%s: write failed", path) : OIR_OK;
}

static int copy_file(const char *from, const char *to, oir_error *err) {
    FILE *in = fopen(from, "rb");
    if (!in) return oir_fail(err, OIR_E_IO, "%s: cannot open: %s (pass --tokenizer DIR)", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    if (!out) {
        fclose(in);
        return oir_fail(err, OIR_E_IO, "%s: cannot create: %s", to, strerror(errno));
    }
    char buf[65536];
    size_t n;
    int bad = 0;
    while (!bad && (n = fread(buf, 1, sizeof buf, in)) > 0) bad = fwrite(buf, 1, n, out) != n;
    bad |= ferror(in);
    fclose(in);
    if (fclose(out) != 0) bad = 1;
    return bad ? oir_fail(err, OIR_E_IO, "copying %s to %s failed", from, to) : OIR_OK;
}

static const char *json_ints(char *buf, size_t cap, const int *v, int n) {
    size_t len = 0;
    for (int i = 0; i < n; i++) len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? ", " : "", v[i]);
    return buf;
}

static int write_configs(const char *dir, const sd_shapes *s, int fp16, oir_error *err) {
    char path[4200], ch[96];
    int rc;
    snprintf(path, sizeof path, "%s/model_index.json", dir);
    if ((rc = write_text(path, err,
                         "{\n  \"_class_name\": \"StableDiffusionPipeline\",\n  \"_diffusers_version\": \"0.16.1\",\n"
                         "  \"feature_extractor\": [null, null],\n  \"requires_safety_checker\": false,\n"
                         "  \"safety_checker\": [null, null],\n  \"scheduler\": [\"diffusers\", \"DDIMScheduler\"],\n"
                         "  \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],\n"
                         "  \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],\n"
                         "  \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],\n"
                         "  \"vae\": [\"diffusers\", \"AutoencoderKL\"]\n}\n")))
        return rc;
    snprintf(path, sizeof path, "%s/unet/config.json", dir);
    if ((rc = write_text(
             path, err,
             "{\n  \"_class_name\": \"UNet2DConditionModel\",\n  \"_diffusers_version\": \"0.16.1\",\n"
             "  \"act_fn\": \"silu\",\n  \"attention_head_dim\": %d,\n  \"block_out_channels\": [%s],\n"
             "  \"center_input_sample\": false,\n  \"class_embed_type\": null,\n  \"conv_in_kernel\": 3,\n"
             "  \"conv_out_kernel\": 3,\n  \"cross_attention_dim\": %d,\n"
             "  \"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", "
             "\"DownBlock2D\"],\n  \"downsample_padding\": 1,\n  \"dual_cross_attention\": false,\n"
             "  \"flip_sin_to_cos\": true,\n  \"freq_shift\": 0,\n  \"in_channels\": 4,\n  \"layers_per_block\": %d,\n"
             "  \"mid_block_scale_factor\": 1,\n  \"mid_block_type\": \"UNetMidBlock2DCrossAttn\",\n"
             "  \"norm_eps\": 1e-05,\n  \"norm_num_groups\": 32,\n  \"num_class_embeds\": null,\n"
             "  \"only_cross_attention\": false,\n  \"out_channels\": 4,\n  \"resnet_time_scale_shift\": \"default\",\n"
             "  \"sample_size\": %d,\n  \"time_embedding_type\": \"positional\",\n"
             "  \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", "
             "\"CrossAttnUpBlock2D\"],\n  \"upcast_attention\": false,\n  \"use_linear_projection\": false\n}\n",
             s->unet_heads, json_ints(ch, sizeof ch, s->unet_ch, MAX_BLOCKS), s->cross_dim, s->unet_layers,
             s->unet_sample)))
        return rc;
    snprintf(path, sizeof path, "%s/vae/config.json", dir);
    if ((rc = write_text(path, err,
                         "{\n  \"_class_name\": \"AutoencoderKL\",\n  \"_diffusers_version\": \"0.16.1\",\n"
                         "  \"act_fn\": \"silu\",\n  \"block_out_channels\": [%s],\n"
                         "  \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", "
                         "\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"],\n  \"in_channels\": 3,\n"
                         "  \"latent_channels\": 4,\n  \"layers_per_block\": %d,\n  \"norm_num_groups\": 32,\n"
                         "  \"out_channels\": 3,\n  \"sample_size\": %d,\n  \"scaling_factor\": 0.18215,\n"
                         "  \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\", "
                         "\"UpDecoderBlock2D\"]\n}\n",
                         json_ints(ch, sizeof ch, s->vae_ch, MAX_BLOCKS), s->vae_layers, s->unet_sample * 8)))
        return rc;
    /* bos/eos/pad ids at the library defaults (0, 2, 1), as in SD 1.5's text_encoder/config.json */
    snprintf(path, sizeof path, "%s/text_encoder/config.json", dir);
    if ((rc = write_text(path, err,
                         "{\n  \"architectures\": [\"CLIPTextModel\"],\n  \"attention_dropout\": 0.0,\n"
                         "  \"bos_token_id\": 0,\n  \"dropout\": 0.0,\n  \"eos_token_id\": 2,\n"
                         "  \"hidden_act\": \"quick_gelu\",\n  \"hidden_size\": %d,\n  \"initializer_factor\": 1.0,\n"
                         "  \"initializer_range\": 0.02,\n  \"intermediate_size\": %d,\n  \"layer_norm_eps\": 1e-05,\n"
                         "  \"max_position_embeddings\": %d,\n  \"model_type\": \"clip_text_model\",\n"
                         "  \"num_attention_heads\": %d,\n  \"num_hidden_layers\": %d,\n  \"pad_token_id\": 1,\n"
                         "  \"projection_dim\": %d,\n  \"torch_dtype\": \"%s\",\n"
                         "  \"transformers_version\": \"4.26.1\",\n  \"vocab_size\": %d\n}\n",
                         s->cross_dim, s->text_inter, CLIP_POSITIONS, s->text_heads, s->text_layers, s->text_proj,
                         fp16 ? "float16" : "float32", CLIP_VOCAB)))
        return rc;
    snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", dir);
    if ((rc = write_text(path, err,
                         "{\n  \"_class_name\": \"DDIMScheduler\",\n  \"_diffusers_version\": \"0.16.1\",\n"
                         "  \"beta_end\": 0.012,\n  \"beta_schedule\": \"scaled_linear\",\n  \"beta_start\": 0.00085,\n"
                         "  \"clip_sample\": false,\n  \"clip_sample_range\": 1.0,\n"
                         "  \"dynamic_thresholding_ratio\": 0.995,\n  \"num_train_timesteps\": 1000,\n"
                         "  \"prediction_type\": \"epsilon\",\n  \"sample_max_value\": 1.0,\n"
                         "  \"set_alpha_to_one\": false,\n  \"steps_offset\": 1,\n  \"thresholding\": false,\n"
                         "  \"trained_betas\": null\n}\n")))
        return rc;
    snprintf(path, sizeof path, "%s/tokenizer/tokenizer_config.json", dir);
    if ((rc = write_text(path, err,
                         "{\n  \"bos_token\": \"<|startoftext|>\",\n  \"eos_token\": \"<|endoftext|>\",\n"
                         "  \"errors\": \"replace\",\n  \"model_max_length\": %d,\n"
                         "  \"pad_token\": \"<|endoftext|>\",\n  \"tokenizer_class\": \"CLIPTokenizer\",\n"
                         "  \"unk_token\": \"<|endoftext|>\"\n}\n",
                         CLIP_POSITIONS)))
        return rc;
    snprintf(path, sizeof path, "%s/tokenizer/special_tokens_map.json", dir);
    return write_text(path, err,
                      "{\n  \"bos_token\": \"<|startoftext|>\",\n  \"eos_token\": \"<|endoftext|>\",\n"
                      "  \"pad_token\": \"<|endoftext|>\",\n  \"unk_token\": \"<|endoftext|>\"\n}\n");
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}
static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static const char *human(char *buf, size_t cap, double bytes) {
    if (bytes >= 1 << 30) snprintf(buf, cap, "%.2f GiB", bytes / (1 << 30));
    else snprintf(buf, cap, "%.1f MiB", bytes / (1 << 20));
    return buf;
}

static int usage(const char *argv0, const char *why) {
    if (why) fprintf(stderr, "make_random_sd: %s\n", why);
    fprintf(stderr,
            "usage: %s OUT_DIR [--small] [--fp32] [--seed N] [--tokenizer DIR] [--force] [--count]\n"
            "  a random-weight SD 1.5-configuration diffusers folder (fp16; --small: a scaled-down\n"
            "  config for tests); --force replaces an existing OUT_DIR; --count writes nothing\n",
            argv0);
    return 2;
}

int main(int argc, char **argv) {
    const char *out = NULL, *tok_dir = NULL;
    int small = 0, fp16 = 1, force = 0, count_only = 0;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--small")) small = 1;
        else if (!strcmp(a, "--fp32")) fp16 = 0;
        else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--count")) count_only = 1;
        else if (!strcmp(a, "--seed") || !strcmp(a, "--tokenizer")) {
            if (!v) return usage(argv[0], "--seed and --tokenizer need a value");
            if (!strcmp(a, "--tokenizer")) tok_dir = v;
            else {
                char *end;
                errno = 0;
                seed = strtoull(v, &end, 10);
                if (errno || end == v || *end || v[0] == '-') return usage(argv[0], "--seed needs a number >= 0");
            }
            i++;
        } else if (a[0] == '-') {
            char why[256];
            snprintf(why, sizeof why, "unknown option %.200s", a);
            return usage(argv[0], why);
        } else if (out) return usage(argv[0], "one OUT_DIR only");
        else out = a;
    }
    const sd_shapes *s = small ? &SMALL : &SD15;
    const char *parts[3] = {"unet", "vae", "text_encoder"};
    tensor_list lists[3] = {{0}, {0}, {0}};
    unet_tensors(&lists[0], s);
    vae_tensors(&lists[1], s);
    text_tensors(&lists[2], s);
    int rc = 0;
    for (int k = 0; k < 3; k++)
        if (lists[k].failed) {
            fprintf(stderr, "make_random_sd: out of memory\n");
            rc = 1;
        }
    int64_t total = 0;
    for (int k = 0; k < 3 && !rc; k++) total += param_count(&lists[k]);
    if (count_only && !rc) {
        printf("%s: unet %lld, vae %lld, text_encoder %lld, total %lld parameters\n", small ? "small" : "SD 1.5",
               (long long)param_count(&lists[0]), (long long)param_count(&lists[1]),
               (long long)param_count(&lists[2]), (long long)total);
        for (int k = 0; k < 3; k++) free(lists[k].t);
        return 0;
    }
    if (!out) {
        for (int k = 0; k < 3; k++) free(lists[k].t);
        return usage(argv[0], "no OUT_DIR");
    }
    char tok_default[4000];
    if (!tok_dir) { /* the build tree: <repo>/models -> <repo>/data/clip-tokenizer */
        snprintf(tok_default, sizeof tok_default, "%s/../data/clip-tokenizer", oir_models_dir());
        tok_dir = tok_default;
    }
    struct stat sb;
    if (!rc && lstat(out, &sb) == 0 && !force) {
        fprintf(stderr, "make_random_sd: %s already exists (pass --force to replace it)\n", out);
        rc = 1;
    }
    char *tmp = rc ? NULL : outfile_temp_name(out, ".tmp");
    if (!rc && (!tmp || mkdir(tmp, 0755) != 0)) {
        fprintf(stderr, "make_random_sd: cannot create a folder beside %s: %s\n", out, strerror(errno));
        rc = 1;
    }
    oir_error err = {0};
    char path[4200], from[4200], hb[32];
    const char *subs[5] = {"unet", "vae", "text_encoder", "tokenizer", "scheduler"};
    for (int k = 0; k < 5 && !rc; k++) {
        snprintf(path, sizeof path, "%s/%s", tmp, subs[k]);
        if (mkdir(path, 0755) != 0) rc = oir_fail(&err, OIR_E_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    if (!rc) rc = write_configs(tmp, s, fp16, &err);
    const char *tok_files[2] = {"vocab.json", "merges.txt"};
    for (int k = 0; k < 2 && !rc; k++) {
        snprintf(from, sizeof from, "%s/%s", tok_dir, tok_files[k]);
        snprintf(path, sizeof path, "%s/tokenizer/%s", tmp, tok_files[k]);
        rc = copy_file(from, path, &err);
    }
    double bytes = 0;
    for (int k = 0; k < 3 && !rc; k++) {
        snprintf(path, sizeof path, "%s/%s/%s", tmp, parts[k],
                 k == 2 ? "model.safetensors" : "diffusion_pytorch_model.safetensors");
        write_opts o = {seed, fp16, parts[k]};
        rc = write_safetensors(path, &lists[k], &o, &err);
        bytes += (double)param_count(&lists[k]) * (fp16 ? 2 : 4);
    }
    if (!rc && force && lstat(out, &sb) == 0) { /* the old folder aside, the new one in, the old one gone */
        char *old = outfile_temp_name(out, ".old");
        if (!old || rename(out, old) != 0) rc = oir_fail(&err, OIR_E_IO, "%s: cannot move aside: %s", out, strerror(errno));
        else if (rename(tmp, out) != 0) {
            rc = oir_fail(&err, OIR_E_IO, "%s: cannot rename into place: %s", out, strerror(errno));
            rename(old, out);
        } else remove_tree(old);
        free(old);
    } else if (!rc && rename(tmp, out) != 0)
        rc = oir_fail(&err, OIR_E_IO, "%s: cannot rename into place: %s", out, strerror(errno));
    if (rc && tmp) remove_tree(tmp);
    if (rc && err.message[0]) fprintf(stderr, "make_random_sd: %s\n", err.message);
    if (!rc)
        printf("make_random_sd: %s (%s, %s, seed %llu): unet %.1f M, vae %.1f M, text encoder %.1f M parameters, %s\n",
               out, small ? "small config" : "SD 1.5 config", fp16 ? "fp16" : "fp32", seed,
               param_count(&lists[0]) / 1e6, param_count(&lists[1]) / 1e6, param_count(&lists[2]) / 1e6,
               human(hb, sizeof hb, bytes));
    free(tmp);
    for (int k = 0; k < 3; k++) free(lists[k].t);
    return rc ? 1 : 0;
}
