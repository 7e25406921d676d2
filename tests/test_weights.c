/* weights: lookup, shape checks, problems named, dtype conversion, unaligned
 * data, shards, name maps, unused tensors. Files are written to a temp dir. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "models/ldm_names.h"
#include "models/weights.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[2][512];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void add(st_writer *w, const char *name, dtype type, int ndim, const int64_t *shape,
                const void *data) {
    tensor t = {.type = type, .ndim = ndim, .data = (void *)data};
    memcpy(t.shape, shape, (size_t)ndim * sizeof *shape);
    oir_error err = {0};
    CHECK(st_writer_add(w, name, &t, &err) == OIR_OK, "add %s: %s", name, err.message);
}

static st_file *save_open(st_writer *w, const char *name) {
    oir_error err = {0};
    st_file *f = NULL;
    if (!CHECK(st_writer_save(w, tmp_path(name), &err) == OIR_OK, "save: %s", err.message)) return NULL;
    CHECK(st_open(&f, tmp_path(name), &err) == OIR_OK, "open: %s", err.message);
    st_writer_free(w);
    return f;
}

static void test_basic(void) {
    /* An aligned F32 at offset 0, then F16 with an odd element count: the F32
     * tensor after it lands at data offset 30, not 4-byte aligned. */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {0.5f, -1, 2, 1024};
    uint16_t h[3] = {f32_to_f16(1.5f), f32_to_f16(-2.25f), f32_to_f16(65504.0f)};
    uint16_t bf[2] = {f32_to_bf16(3.0f), f32_to_bf16(-0.125f)};
    int64_t i64[2] = {7, 8};
    st_writer *w = st_writer_new();
    add(w, "down_blocks.0.resnets.0.conv1.weight", DT_F32, 4, (int64_t[]){1, 2, 3, 1}, a);
    add(w, "a_half.weight", DT_F16, 1, (int64_t[]){3}, h);
    add(w, "b_unaligned.weight", DT_F32, 2, (int64_t[]){2, 2}, b);
    add(w, "c_bf16.weight", DT_BF16, 1, (int64_t[]){2}, bf);
    add(w, "ints", DT_I64, 1, (int64_t[]){2}, i64);
    add(w, "extra.bias", DT_F32, 1, (int64_t[]){2}, a);
    add(w, "buffer.position_ids", DT_F32, 1, (int64_t[]){2}, a);
    st_file *f = save_open(w, "basic.safetensors");
    if (!f) return;
    oir_error err = {0};
    weights *ws = NULL;
    if (!CHECK(weights_from_file(&ws, f, "unet", "", NULL, &err) == OIR_OK, "from_file: %s",
               err.message))
        return;
    CHECK(weights_count(ws) == 7, "7 tensors, got %d", weights_count(ws));

    /* Aligned F32: points into the mapping. */
    const float *p = weights_getv(ws, "down_blocks.0.resnets.0.conv1.weight", 4, 1, 2, 3, 1);
    const tensor *t = st_find(f, "down_blocks.0.resnets.0.conv1.weight");
    CHECK(p && t && (const void *)p == t->data, "aligned F32 is zero-copy");
    CHECK(p && p[5] == 6, "F32 values");
    /* Unaligned F32: copied, same values, aligned pointer. */
    t = st_find(f, "b_unaligned.weight");
    CHECK(t && ((uintptr_t)t->data % 4) != 0, "the test tensor really is unaligned");
    p = weights_getv(ws, "b_unaligned.weight", 2, 2, 2);
    CHECK(p && (const void *)p != t->data && ((uintptr_t)p % 4) == 0, "unaligned F32 copied");
    CHECK(p && !memcmp(p, b, sizeof b), "unaligned F32 values");
    /* F16 / BF16 converted once: same pointer on the second request. */
    p = weights_getv(ws, "a_half.weight", 1, 3);
    CHECK(p && p[0] == 1.5f && p[1] == -2.25f && p[2] == 65504.0f, "F16 -> F32 values");
    CHECK(p == weights_getv(ws, "a_half.weight", 1, 3), "converted once");
    p = weights_getv(ws, "c_bf16.weight", 1, 2);
    CHECK(p && p[0] == 3.0f && p[1] == -0.125f, "BF16 -> F32 values");
    CHECK(weights_owned_bytes(ws) == (4 + 3 + 2) * sizeof(float), "owned bytes %zu",
          weights_owned_bytes(ws));
    CHECK(weights_finish(ws, &err) == OIR_OK, "no problems yet: %s", err.message);

    /* Unused: extra.bias, ints, buffer.position_ids; then ignore the buffer. */
    CHECK(weights_unused_count(ws) == 3, "3 unused, got %d", weights_unused_count(ws));
    weights_ignore(ws, "buffer.position_ids");
    CHECK(weights_unused_count(ws) == 2 && !strcmp(weights_unused_at(ws, 0), "extra.bias") &&
              !strcmp(weights_unused_at(ws, 1), "ints") && !weights_unused_at(ws, 2),
          "unused listed by name, sorted");
    CHECK(weights_has(ws, "extra.bias") && !weights_has(ws, "nope"), "weights_has");
    CHECK(weights_unused_count(ws) == 2, "weights_has does not mark used");

    /* A wrong shape: named with got and expected. */
    p = weights_getv(ws, "down_blocks.0.resnets.0.conv1.weight", 4, 1, 2, 3, 3);
    CHECK(!p, "mis-shaped returns NULL");
    CHECK(weights_finish(ws, &err) == OIR_E_SHAPE, "OIR_E_SHAPE");
    CHECK(!strcmp(err.message, "unet: tensor down_blocks.0.resnets.0.conv1.weight has shape "
                               "[1, 2, 3, 1], expected [1, 2, 3, 3]"),
          "message: %s", err.message);
    /* An integer tensor cannot be a weight. */
    CHECK(!weights_getv(ws, "ints", 1, 2), "I64 refused");
    /* Missing: code OIR_E_MISSING wins, every problem counted. */
    CHECK(!weights_getv(ws, "mid_block.attentions.0.norm.weight", 1, 32), "missing NULL");
    int rc = weights_finish(ws, &err);
    CHECK(rc == OIR_E_MISSING && strstr(err.message, "3 tensor problems (1 missing, 2 mis-shaped)") &&
              strstr(err.message, "tensor mid_block.attentions.0.norm.weight is missing") &&
              strstr(err.message, "dtype I64"),
          "summary: %s", err.message);
    CHECK(weights_problem_count(ws) == 3 && weights_missing_count(ws) == 1, "problem counts");
    /* More than 5 problems: the first 5 by name, then a count. */
    char name[64];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "absent_%d.weight", i);
        weights_getv(ws, name, 1, 4);
    }
    weights_finish(ws, &err);
    CHECK(strstr(err.message, "9 tensor problems") && strstr(err.message, "and 4 more") &&
              strstr(err.message, "absent_1.weight") && !strstr(err.message, "absent_2.weight"),
          "first five then a count: %s", err.message);
    CHECK(weights_getv(ws, "x", 9) == NULL && weights_problem_count(ws) == 10, "ndim > 8 refused");
    weights_free(ws);
    st_close(f);
}

static void test_prefix_map_reshape(void) {
    /* An LDM-style VAE attention: 1x1 conv weights under first_stage_model. */
    float q[4 * 4], nb[4];
    for (int i = 0; i < 16; i++) q[i] = (float)i;
    for (int i = 0; i < 4; i++) nb[i] = (float)i;
    st_writer *w = st_writer_new();
    add(w, "first_stage_model.encoder.mid.attn_1.q.weight", DT_F32, 4, (int64_t[]){4, 4, 1, 1}, q);
    add(w, "first_stage_model.encoder.mid.attn_1.norm.bias", DT_F32, 1, (int64_t[]){4}, nb);
    add(w, "first_stage_model.encoder.conv_in.weight", DT_F32, 4, (int64_t[]){4, 4, 1, 1}, q);
    add(w, "model.diffusion_model.out.0.weight", DT_F32, 1, (int64_t[]){4}, nb);
    st_file *f = save_open(w, "ldm.safetensors");
    if (!f) return;
    oir_error err = {0};
    ldm_layout l = {.component = LDM_VAE, .num_blocks = 2};
    weights_opts o = {.component = "vae", .prefix = "first_stage_model.", .map = ldm_map_name,
                      .map_ctx = &l, .map_ctx_size = sizeof l, .reshape_ok = ldm_vae_reshape_ok};
    weights *ws = NULL;
    if (!CHECK(weights_open(&ws, &f, 1, &o, &err) == OIR_OK, "open: %s", err.message)) return;
    l.num_blocks = 0; /* the layout was copied: changing ours does not matter */
    CHECK(weights_count(ws) == 3, "only the prefix's tensors: %d", weights_count(ws));
    const float *p = weights_getv(ws, "encoder.mid_block.attentions.0.query.weight", 2, 4, 4);
    CHECK(p && p[5] == 5, "(4,4,1,1) accepted for an expected (4,4) on a VAE attention name");
    p = weights_getv(ws, "encoder.mid_block.attentions.0.to_q.weight", 2, 4, 4);
    CHECK(p && p[5] == 5, "new diffusers spelling maps too");
    p = weights_getv(ws, "encoder.mid_block.attentions.0.group_norm.bias", 1, 4);
    CHECK(p && p[3] == 3, "group_norm -> norm");
    CHECK(!weights_getv(ws, "encoder.conv_in.weight", 2, 4, 4),
          "no reshape for other names (conv_in)");
    CHECK(!weights_getv(ws, "encoder.mid_block.attentions.0.key.weight", 2, 4, 4), "k missing");
    CHECK(!weights_getv(ws, "some.unknown.name", 1, 4), "no LDM counterpart");
    CHECK(weights_finish(ws, &err) == OIR_E_MISSING, "problems");
    CHECK(strstr(err.message, "tensor encoder.conv_in.weight (first_stage_model.encoder.conv_in."
                              "weight) has shape [4, 4, 1, 1], expected [4, 4]") &&
              strstr(err.message, "tensor encoder.mid_block.attentions.0.key.weight is missing "
                                  "(looked for first_stage_model.encoder.mid.attn_1.k.weight)") &&
              strstr(err.message, "some.unknown.name is missing (no counterpart"),
          "messages name diffusers and file names: %s", err.message);
    CHECK(weights_unused_count(ws) == 0, "all three used (conv_in was looked at)");
    weights_free(ws);

    /* Without a map, the VAE attention spellings are aliases of each other. */
    w = st_writer_new();
    add(w, "encoder.mid_block.attentions.0.to_q.weight", DT_F32, 2, (int64_t[]){4, 4}, q);
    add(w, "encoder.mid_block.attentions.0.proj_attn.bias", DT_F32, 1, (int64_t[]){4}, nb);
    st_file *g = save_open(w, "alias.safetensors");
    if (g && CHECK(weights_from_file(&ws, g, "vae", "", NULL, &err) == OIR_OK, "alias open")) {
        CHECK(weights_getv(ws, "encoder.mid_block.attentions.0.query.weight", 2, 4, 4) != NULL,
              "query finds to_q");
        CHECK(weights_getv(ws, "encoder.mid_block.attentions.0.to_out.0.bias", 1, 4) != NULL,
              "to_out.0 finds proj_attn");
        CHECK(weights_finish(ws, &err) == OIR_OK && weights_unused_count(ws) == 0, "alias clean");
        weights_free(ws);
    }
    st_close(g);
    st_close(f);
}

static const char *upper_map(const char *name, char *buf, size_t cap) {
    if (strncmp(name, "m.", 2)) return NULL;
    snprintf(buf, cap, "M.%s", name + 2);
    return buf;
}

static void test_shards(void) {
    float v[2] = {1, 2}, u[2] = {3, 4};
    st_writer *w = st_writer_new();
    add(w, "p.M.a", DT_F32, 1, (int64_t[]){2}, v);
    add(w, "q.other", DT_F32, 1, (int64_t[]){2}, v);
    st_file *f1 = save_open(w, "shard1.safetensors");
    w = st_writer_new();
    add(w, "p.M.b", DT_F32, 1, (int64_t[]){2}, u);
    st_file *f2 = save_open(w, "shard2.safetensors");
    w = st_writer_new();
    add(w, "p.M.b", DT_F32, 1, (int64_t[]){2}, v);
    st_file *f3 = save_open(w, "shard3.safetensors");
    if (!f1 || !f2 || !f3) return;
    oir_error err = {0};
    st_file *two[2] = {f1, f2};
    weights_opts o = {.component = "shards", .prefix = "p."};
    weights *ws = NULL;
    if (CHECK(weights_open(&ws, two, 2, &o, &err) == OIR_OK, "2 shards: %s", err.message)) {
        const float *a = weights_getv(ws, "M.a", 1, 2), *b = weights_getv(ws, "M.b", 1, 2);
        CHECK(a && b && a[1] == 2 && b[0] == 3, "tensors from both shards");
        CHECK(weights_count(ws) == 2 && weights_numel(ws) == 4, "q.other is outside the prefix");
        weights_free(ws);
    }
    st_file *dup[2] = {f2, f3};
    int rc = weights_open(&ws, dup, 2, &o, &err);
    CHECK(rc == OIR_E_FORMAT && strstr(err.message, "p.M.b") && strstr(err.message, "shard3"),
          "a tensor in two shards: %s", err.message);
    /* The context-free map of weights_from_file. */
    if (CHECK(weights_from_file(&ws, f1, "m", "p.", upper_map, &err) == OIR_OK, "plain map")) {
        CHECK(weights_getv(ws, "m.a", 1, 2) != NULL, "plain map used");
        CHECK(!weights_getv(ws, "x.a", 1, 2), "plain map: no counterpart");
        weights_free(ws);
    }
    st_close(f1);
    st_close(f2);
    st_close(f3);
}

/* NaN / inf in a weight: refused when the tensor is first resolved (F32
 * mapped or copied, F16 / BF16 converted), naming the tensor; a NaN weight
 * used to run to a black image with exit 0. */
static void test_nonfinite(void) {
    float ok[4] = {1, 2, 3, 4}, nan4[4] = {1, NAN, 3, 4}, inf4[4] = {1, 2, -INFINITY, 4};
    uint16_t h[4] = {f32_to_f16(1), f32_to_f16(2), 0x7c00 /* +inf */, f32_to_f16(4)};
    uint16_t bf[4] = {f32_to_bf16(1), 0x7fc0 /* NaN */, f32_to_bf16(3), f32_to_bf16(4)};
    st_writer *w = st_writer_new();
    add(w, "a_ok.weight", DT_F32, 1, (int64_t[]){4}, ok);
    add(w, "b_nan.weight", DT_F32, 1, (int64_t[]){4}, nan4);
    add(w, "c_inf.weight", DT_F32, 1, (int64_t[]){4}, inf4);
    add(w, "d_half_inf.weight", DT_F16, 1, (int64_t[]){4}, h);
    add(w, "e_bf16_nan.weight", DT_BF16, 1, (int64_t[]){4}, bf);
    st_file *f = save_open(w, "nonfinite.safetensors");
    if (!f) return;
    oir_error err = {0};
    weights *ws = NULL;
    if (!CHECK(weights_from_file(&ws, f, "unet", "", NULL, &err) == OIR_OK, "%s", err.message))
        return;
    CHECK(weights_getv(ws, "a_ok.weight", 1, 4) != NULL, "finite weight accepted");
    CHECK(weights_finish(ws, &err) == OIR_OK, "no problem yet: %s", err.message);
    CHECK(weights_getv(ws, "b_nan.weight", 1, 4) == NULL, "NaN F32 weight refused");
    int rc = weights_finish(ws, &err);
    CHECK(rc == OIR_E_FORMAT && strstr(err.message, "b_nan.weight") && strstr(err.message, "non-finite") &&
              strstr(err.message, "index 1"),
          "NaN named: %s", err.message);
    CHECK(weights_getv(ws, "c_inf.weight", 1, 4) == NULL, "-inf F32 weight refused");
    CHECK(weights_getv(ws, "d_half_inf.weight", 1, 4) == NULL, "inf F16 weight refused");
    CHECK(weights_getv(ws, "e_bf16_nan.weight", 1, 4) == NULL, "NaN BF16 weight refused");
    rc = weights_finish(ws, &err);
    CHECK(rc == OIR_E_FORMAT && strstr(err.message, "4 tensor problems") &&
              strstr(err.message, "d_half_inf.weight") && strstr(err.message, "e_bf16_nan.weight"),
          "all four named: %s", err.message);
    weights_free(ws);
    st_close(f);
}

/* A config asking for millions of layers must not collect one message per
 * missing tensor (a CLIP config with 1e7 layers ran to 16 GB): the first
 * few are kept, the rest counted. */
static void test_problem_cap(void) {
    float v[2] = {1, 2};
    st_writer *w = st_writer_new();
    add(w, "present.weight", DT_F32, 1, (int64_t[]){2}, v);
    st_file *f = save_open(w, "cap.safetensors");
    if (!f) return;
    oir_error err = {0};
    weights *ws = NULL;
    if (!CHECK(weights_from_file(&ws, f, "clip", "", NULL, &err) == OIR_OK, "%s", err.message)) return;
    char name[64];
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof name, "layers.%d.weight", i);
        weights_getv(ws, name, 1, 2);
    }
    CHECK(weights_problem_count(ws) <= 64, "messages kept: %d, expected at most 64",
          weights_problem_count(ws));
    CHECK(weights_missing_count(ws) == 100000, "every problem counted: %d", weights_missing_count(ws));
    int rc = weights_finish(ws, &err);
    CHECK(rc == OIR_E_MISSING && strstr(err.message, "100000 tensor problems") &&
              strstr(err.message, "layers.0.weight") && strstr(err.message, "and 99995 more"),
          "summary: %s", err.message);
    weights_free(ws);
    st_close(f);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/oir_test_weights_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return th_summary();
    }
    test_basic();
    test_prefix_map_reshape();
    test_shards();
    test_nonfinite();
    test_problem_cap();
    const char *files[] = {"nonfinite.safetensors", "cap.safetensors", "basic.safetensors", "ldm.safetensors", "alias.safetensors",
                           "shard1.safetensors", "shard2.safetensors", "shard3.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(tmp_path(files[i]));
    rmdir(tmpdir);
    return th_summary();
}
