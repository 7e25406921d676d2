/* CLIP text and vision transformers, preprocessing and the scorer's cosine,
 * against transformers 4.26.1 (fixtures in tests/fixtures/sd/, made by
 * tools/fixtures/).
 *
 * Tolerances (fp32, tiny random-weight models):
 *   model outputs vs PyTorch      atol 1e-4, rtol 1e-3
 *   a row alone vs in a batch,
 *   chunked (small arena) vs not  atol 1e-5, rtol 1e-5 (BLAS blocking may differ by M)
 *   preprocessing vs CLIPImageProcessor  atol 1e-6 (same float32 operations on the
 *                                 same Pillow-exact 8-bit pixels: expected exact)
 *   cosine                        1e-6 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/image.h"
#include "models/clip_text.h"
#include "models/clip_vision.h"
#include "models/weights.h"

#define ATOL 1e-4f
#define RTOL 1e-3f
#define BATCH_TOL 1e-5f

/* A model file and its weights. */
typedef struct {
    st_file *f;
    weights *w;
} wfile;

static int open_weights(wfile *wf, const char *fixture, const char *component) {
    oir_error err = {0};
    memset(wf, 0, sizeof *wf);
    wf->f = th_open_fixture(fixture);
    if (!wf->f) return 0;
    if (!CHECK(weights_from_file(&wf->w, wf->f, component, "", NULL, &err) == OIR_OK,
               "weights_from_file %s: %s", fixture, err.message)) {
        st_close(wf->f);
        wf->f = NULL;
        return 0;
    }
    return 1;
}

static void close_weights(wfile *wf) {
    weights_free(wf->w);
    st_close(wf->f);
    memset(wf, 0, sizeof *wf);
}

/* weights_finish must succeed; the unused tensors are listed. */
static void finish_weights(wfile *wf, const char *what) {
    oir_error err = {0};
    CHECK(weights_finish(wf->w, &err) == OIR_OK, "%s: weights_finish: %s", what, err.message);
    int n = weights_unused_count(wf->w);
    printf("  %s: %d unused tensor%s", what, n, n == 1 ? "" : "s");
    for (int i = 0; i < n && i < 8; i++) printf("%s%s", i ? ", " : ": ", weights_unused_at(wf->w, i));
    printf("%s\n", n > 8 ? ", ..." : "");
}

/* input_ids (int64 in the fixture) as int32. */
static int32_t *fixture_ids(st_file *f, int *B, int *T) {
    const tensor *t = f ? st_find(f, "input_ids") : NULL;
    if (!CHECK(t && t->type == DT_I64 && t->ndim == 2, "fixture input_ids: expected int64 (B, T)"))
        return NULL;
    *B = (int)t->shape[0];
    *T = (int)t->shape[1];
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)*B * *T);
    for (int i = 0; i < *B * *T; i++) ids[i] = (int32_t)((const int64_t *)t->data)[i];
    return ids;
}

static int contains(const char *s, const char *part) { return strstr(s, part) != NULL; }

/* ---- text encoder (CLIPTextModel of the tiny pipeline) ----------------- */

static void test_text_encoder(void) {
    printf("text encoder vs ref_text\n");
    oir_error err = {0};
    clip_text_config cfg;
    if (!CHECK(clip_text_config_load(&cfg, th_fixture_path("sd/tiny-pipe/text_encoder/config.json"),
                                     &err) == OIR_OK,
               "config: %s", err.message))
        return;
    wfile wf;
    if (!open_weights(&wf, "sd/tiny-pipe/text_encoder/model.safetensors", "text_encoder")) return;
    clip_text_model *m = NULL;
    st_file *ref = th_open_fixture("sd/ref_text.safetensors");
    int B = 0, T = 0;
    int32_t *ids = fixture_ids(ref, &B, &T);
    const int D = cfg.hidden_size, L = cfg.num_hidden_layers;
    float *last = NULL, *pooled = NULL, *hidden = NULL, *one = NULL, *one_pool = NULL;
    arena a = {0};
    if (!CHECK(clip_text_load(&m, &cfg, wf.w, 0, &err) == OIR_OK, "load: %s", err.message) ||
        !ids)
        goto cleanup;
    finish_weights(&wf, "text_encoder");
    CHECK(arena_init(&a, clip_text_arena_bytes(&cfg, B, T), &err) == OIR_OK, "arena: %s",
          err.message);
    last = malloc(sizeof(float) * B * T * D);
    pooled = malloc(sizeof(float) * B * D);
    hidden = malloc(sizeof(float) * (L + 1) * B * T * D);
    if (!CHECK(clip_text_forward_hidden(m, &a, ids, B, T, last, pooled, NULL, hidden, &err) ==
                   OIR_OK,
               "forward: %s", err.message))
        goto cleanup;
    CHECK(a.used == 0, "arena reset after forward (used %zu)", a.used);
    float *r = th_fixture_f32(ref, "last_hidden_state", NULL, NULL);
    th_close("text last_hidden_state", last, r, (size_t)B * T * D, ATOL, RTOL);
    free(r);
    r = th_fixture_f32(ref, "pooler_output", NULL, NULL);
    th_close("text pooler_output", pooled, r, (size_t)B * D, ATOL, RTOL);
    free(r);
    for (int l = 0; l <= L; l++) {
        char name[64];
        snprintf(name, sizeof name, "hidden_states.%d", l);
        r = th_fixture_f32(ref, name, NULL, NULL);
        th_close(name, hidden + (size_t)l * B * T * D, r, (size_t)B * T * D, ATOL, RTOL);
        free(r);
    }
    /* the pooled row is the final-normed hidden state at argmax(ids) */
    for (int b = 0; b < B; b++) {
        int at = 0;
        for (int t = 1; t < T; t++)
            if (ids[b * T + t] > ids[b * T + at]) at = t;
        CHECK(memcmp(pooled + (size_t)b * D, last + ((size_t)b * T + at) * D,
                     sizeof(float) * D) == 0,
              "pooled row %d == last_hidden at argmax position %d", b, at);
    }

    /* each row alone == the same row in the batch; pooled only (no last_hidden) too */
    one = malloc(sizeof(float) * T * D);
    one_pool = malloc(sizeof(float) * D);
    for (int b = 0; b < B; b++) {
        char what[64];
        CHECK(clip_text_forward(m, &a, ids + (size_t)b * T, 1, T, one, NULL, NULL, &err) ==
                  OIR_OK,
              "forward row %d: %s", b, err.message);
        snprintf(what, sizeof what, "text row %d alone vs batch", b);
        th_close(what, one, last + (size_t)b * T * D, (size_t)T * D, BATCH_TOL, BATCH_TOL);
        CHECK(clip_text_forward(m, &a, ids + (size_t)b * T, 1, T, NULL, one_pool, NULL, &err) ==
                  OIR_OK,
              "forward row %d pooled only: %s", b, err.message);
        snprintf(what, sizeof what, "text row %d pooled only", b);
        th_close(what, one_pool, pooled + (size_t)b * D, D, BATCH_TOL, BATCH_TOL);
    }
    /* an arena for one row: the batch runs in chunks, same results */
    {
        arena small = {0};
        float *chunked = malloc(sizeof(float) * B * T * D);
        CHECK(arena_init(&small, clip_text_arena_bytes(&cfg, 1, T), &err) == OIR_OK, "arena");
        CHECK(clip_text_forward(m, &small, ids, B, T, chunked, NULL, NULL, &err) == OIR_OK,
              "chunked forward: %s", err.message);
        th_close("text chunked (1-row arena) vs batch", chunked, last, (size_t)B * T * D,
                 BATCH_TOL, BATCH_TOL);
        arena_free(&small);
        CHECK(arena_init(&small, clip_text_arena_bytes(&cfg, 1, T) / 2, &err) == OIR_OK,
              "arena");
        int rc = clip_text_forward(m, &small, ids, B, T, chunked, NULL, NULL, &err);
        CHECK(rc == OIR_E_NOMEM && contains(err.message, "arena"),
              "arena too small for one row: NOMEM, got %d: %s", rc, err.message);
        arena_free(&small);
        free(chunked);
    }

    /* bad input */
    {
        int rc;
        int32_t bad[3] = {1, cfg.vocab_size, 2};
        char want[64];
        rc = clip_text_forward(m, &a, bad, 1, 3, last, NULL, NULL, &err);
        snprintf(want, sizeof want, "= %d", cfg.vocab_size);
        CHECK(rc == OIR_E_ARG && contains(err.message, want) &&
                  contains(err.message, "vocab_size"),
              "id == vocab_size rejected naming id and vocab_size: %d %s", rc, err.message);
        bad[1] = -5;
        rc = clip_text_forward(m, &a, bad, 1, 3, last, NULL, NULL, &err);
        CHECK(rc == OIR_E_ARG && contains(err.message, "-5"), "negative id rejected: %s",
              err.message);
        int Tbig = cfg.max_position_embeddings + 1;
        int32_t *big = calloc((size_t)Tbig, sizeof(int32_t));
        rc = clip_text_forward(m, &a, big, 1, Tbig, NULL, NULL, NULL, &err);
        CHECK(rc == OIR_E_SHAPE && contains(err.message, "max_position_embeddings"),
              "T > max_position_embeddings rejected: %d %s", rc, err.message);
        free(big);
        rc = clip_text_forward(m, &a, ids, 1, T, NULL, NULL, pooled, &err);
        CHECK(rc == OIR_E_ARG && contains(err.message, "text_projection"),
              "text_embeds without projection rejected: %s", err.message);
        rc = clip_text_forward(m, &a, ids, 0, T, NULL, pooled, NULL, &err);
        CHECK(rc == OIR_E_SHAPE, "empty batch rejected: %s", err.message);
    }
    /* a shorter sequence (no padding) works: positions 0..T'-1 */
    {
        int32_t s[5] = {ids[0], ids[1], ids[2], ids[3], cfg.vocab_size - 1};
        float sp[64];
        if (D <= 64)
            CHECK(clip_text_forward(m, &a, s, 1, 5, NULL, sp, NULL, &err) == OIR_OK,
                  "T=5 forward: %s", err.message);
    }
cleanup:
    arena_free(&a);
    clip_text_free(m);
    free(ids);
    free(last);
    free(pooled);
    free(hidden);
    free(one);
    free(one_pool);
    st_close(ref);
    close_weights(&wf);
}

/* ---- the same text encoder inside a single-file (LDM) checkpoint ------- */

static void test_single_file(void) {
    printf("text encoder from the single-file checkpoint\n");
    oir_error err = {0};
    clip_text_config cfg;
    if (!CHECK(clip_text_config_load(&cfg, th_fixture_path("sd/tiny-pipe/text_encoder/config.json"),
                                     &err) == OIR_OK,
               "config: %s", err.message))
        return;
    st_file *f = th_open_fixture("sd/tiny-pipe.safetensors");
    st_file *ref = th_open_fixture("sd/ref_text.safetensors");
    weights *w = NULL;
    clip_text_model *m = NULL;
    arena a = {0};
    int B = 0, T = 0;
    int32_t *ids = fixture_ids(ref, &B, &T);
    float *last = NULL, *r = NULL;
    if (!f || !ids) goto cleanup;
    /* keys "cond_stage_model.transformer.text_model.*": a prefix, no renaming */
    if (!CHECK(weights_from_file(&w, f, "text_encoder", "cond_stage_model.transformer.", NULL,
                                 &err) == OIR_OK,
               "weights: %s", err.message) ||
        !CHECK(clip_text_load(&m, &cfg, w, 0, &err) == OIR_OK, "load: %s", err.message))
        goto cleanup;
    CHECK(weights_finish(w, &err) == OIR_OK, "weights_finish: %s", err.message);
    CHECK(arena_init(&a, clip_text_arena_bytes(&cfg, B, T), &err) == OIR_OK, "arena");
    last = malloc(sizeof(float) * B * T * cfg.hidden_size);
    CHECK(clip_text_forward(m, &a, ids, B, T, last, NULL, NULL, &err) == OIR_OK, "forward: %s",
          err.message);
    r = th_fixture_f32(ref, "last_hidden_state", NULL, NULL);
    th_close("single-file text last_hidden_state", last, r, (size_t)B * T * cfg.hidden_size,
             ATOL, RTOL);
cleanup:
    free(r);
    free(last);
    free(ids);
    arena_free(&a);
    clip_text_free(m);
    weights_free(w);
    st_close(ref);
    st_close(f);
}

/* ---- configs and weights: bad input ------------------------------------ */

static void test_bad_configs(void) {
    printf("bad configs and weights\n");
    oir_error err = {0};
    clip_text_config tc;
    clip_vision_config vc;
    struct {
        const char *json, *field;
    } bad_text[] = {
        {"{\"hidden_size\": 30, \"num_attention_heads\": 4}", "hidden_size"},
        {"{\"hidden_size\": -3}", "hidden_size"},
        {"{\"num_hidden_layers\": 1.5}", "num_hidden_layers"},
        {"{\"vocab_size\": \"big\"}", "vocab_size"},
        {"{\"hidden_act\": \"relu\"}", "hidden_act"},
        {"{\"text_config\": {\"hidden_size\": 30, \"num_attention_heads\": 4}}", "hidden_size"},
        {"{\"text_config\": 7}", "text_config"},
        {"{\"layer_norm_eps\": 0}", "layer_norm_eps"},
    };
    for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++) {
        cJSON *j = cJSON_Parse(bad_text[i].json);
        int rc = clip_text_config_from_json(&tc, j, "cfg.json", &err);
        CHECK(rc == OIR_E_FORMAT && contains(err.message, bad_text[i].field) &&
                  contains(err.message, "cfg.json"),
              "text config %s rejected naming %s: %d %s", bad_text[i].json, bad_text[i].field,
              rc, err.message);
        cJSON_Delete(j);
    }
    struct {
        const char *json, *field;
    } bad_vision[] = {
        {"{\"vision_config\": {\"hidden_size\": 30, \"num_attention_heads\": 4}}", "hidden_size"},
        {"{\"image_size\": 30, \"patch_size\": 8}", "image_size"},
        {"{\"patch_size\": 0}", "patch_size"},
    };
    for (size_t i = 0; i < sizeof bad_vision / sizeof bad_vision[0]; i++) {
        cJSON *j = cJSON_Parse(bad_vision[i].json);
        int rc = clip_vision_config_from_json(&vc, j, "cfg.json", &err);
        CHECK(rc == OIR_E_FORMAT && contains(err.message, bad_vision[i].field),
              "vision config %s rejected naming %s: %d %s", bad_vision[i].json,
              bad_vision[i].field, rc, err.message);
        cJSON_Delete(j);
    }
    /* CLIPModel config: tower fields from text_config, projection_dim from the top */
    {
        cJSON *j = cJSON_Parse("{\"projection_dim\": 7, \"text_config\": {\"hidden_size\": 8, "
                               "\"num_attention_heads\": 2, \"projection_dim\": 99, "
                               "\"hidden_act\": \"gelu\"}, \"vision_config\": {\"image_size\": "
                               "32, \"patch_size\": 16, \"hidden_size\": 12, "
                               "\"num_attention_heads\": 3}}");
        CHECK(clip_text_config_from_json(&tc, j, "clip.json", &err) == OIR_OK, "%s",
              err.message);
        CHECK(tc.hidden_size == 8 && tc.num_attention_heads == 2 && tc.projection_dim == 7 &&
                  tc.hidden_act == CLIP_ACT_GELU && tc.vocab_size == 49408,
              "CLIPConfig text fields (projection_dim %d)", tc.projection_dim);
        CHECK(clip_vision_config_from_json(&vc, j, "clip.json", &err) == OIR_OK, "%s",
              err.message);
        CHECK(vc.hidden_size == 12 && vc.projection_dim == 7 && clip_vision_grid(&vc) == 2,
              "CLIPConfig vision fields");
        cJSON_Delete(j);
    }
    CHECK(clip_text_config_load(&tc, th_fixture_path("sd/no-such/config.json"), &err) ==
                  OIR_E_IO &&
              contains(err.message, "no-such"),
          "missing config.json names the path: %s", err.message);

    /* missing tensors: a file of another model, every name reported through weights_finish */
    {
        wfile wf;
        if (open_weights(&wf, "sd/ref_text.safetensors", "text_encoder")) {
            clip_text_model *m = NULL;
            tc = clip_text_config_default();
            tc.num_hidden_layers = 1;
            int rc = clip_text_load(&m, &tc, wf.w, 1, &err);
            CHECK(rc == OIR_E_MISSING && m == NULL &&
                      contains(err.message, "text_model.embeddings.token_embedding.weight"),
                  "missing tensors named: %d %s", rc, err.message);
            close_weights(&wf);
        }
    }
    /* wrong shape: the right file with a config that disagrees */
    {
        wfile wf;
        if (open_weights(&wf, "sd/tiny-pipe/text_encoder/model.safetensors", "text_encoder") &&
            clip_text_config_load(&tc, th_fixture_path("sd/tiny-pipe/text_encoder/config.json"),
                                  &err) == OIR_OK) {
            clip_text_model *m = NULL;
            tc.intermediate_size += 1;
            int rc = clip_text_load(&m, &tc, wf.w, 0, &err);
            CHECK(rc == OIR_E_SHAPE && m == NULL && contains(err.message, "mlp.fc1.weight"),
                  "mis-shaped tensor named: %d %s", rc, err.message);
        }
        close_weights(&wf);
    }
}

/* ---- CLIPModel: text and vision towers with projections ---------------- */

static void test_clip_model(void) {
    printf("CLIPModel vs ref_clip\n");
    oir_error err = {0};
    const char *cfg_path = th_fixture_path("sd/clip-tiny/config.json");
    clip_text_config tc;
    clip_vision_config vc;
    if (!CHECK(clip_text_config_load(&tc, cfg_path, &err) == OIR_OK, "%s", err.message) ||
        !CHECK(clip_vision_config_load(&vc, th_fixture_path("sd/clip-tiny/config.json"), &err) ==
                   OIR_OK,
               "%s", err.message))
        return;
    wfile wf;
    if (!open_weights(&wf, "sd/clip-tiny/model.safetensors", "clip")) return;
    clip_text_model *tm = NULL;
    clip_vision_model *vm = NULL;
    st_file *ref = th_open_fixture("sd/ref_clip.safetensors");
    int B = 0, T = 0;
    int32_t *ids = fixture_ids(ref, &B, &T);
    const int G = clip_vision_grid(&vc), N = 1 + G * G, Dv = vc.hidden_size, P = vc.projection_dim;
    const int S = vc.image_size, C = vc.num_channels;
    float *px = NULL, *temb = NULL, *tpool = NULL, *iemb = NULL, *vpool = NULL, *vlast = NULL;
    float *one = NULL, *r = NULL;
    uint8_t *pm = NULL;
    arena a = {0};
    if (!ids) goto cleanup;
    CHECK(clip_text_load(&tm, &tc, wf.w, 1, &err) == OIR_OK, "text load: %s", err.message);
    CHECK(clip_vision_load(&vm, &vc, wf.w, 1, &err) == OIR_OK, "vision load: %s", err.message);
    if (!tm || !vm) goto cleanup;
    finish_weights(&wf, "clip (text + vision)");
    for (int i = 0; i < weights_unused_count(wf.w); i++) {
        const char *u = weights_unused_at(wf.w, i);
        CHECK(strcmp(u, "logit_scale") == 0 || contains(u, "position_ids"),
              "unused tensor %s is logit_scale or a position_ids buffer", u);
    }
    CHECK(tc.projection_dim == P, "text and vision projection_dim agree");
    size_t need = clip_text_arena_bytes(&tc, B, T);
    if (clip_vision_arena_bytes(&vc, B) > need) need = clip_vision_arena_bytes(&vc, B);
    CHECK(arena_init(&a, need, &err) == OIR_OK, "arena");

    /* text tower: pooler_output and projected text_embeds */
    temb = malloc(sizeof(float) * B * P);
    tpool = malloc(sizeof(float) * B * tc.hidden_size);
    float *tlast = malloc(sizeof(float) * B * T * tc.hidden_size);
    CHECK(clip_text_forward(tm, &a, ids, B, T, tlast, tpool, temb, &err) == OIR_OK,
          "text forward: %s", err.message);
    r = th_fixture_f32(ref, "text_last_hidden_state", NULL, NULL);
    th_close("clip text_last_hidden_state", tlast, r, (size_t)B * T * tc.hidden_size, ATOL, RTOL);
    free(r);
    free(tlast);
    r = th_fixture_f32(ref, "text_pooler_output", NULL, NULL);
    th_close("clip text_pooler_output", tpool, r, (size_t)B * tc.hidden_size, ATOL, RTOL);
    free(r);
    r = th_fixture_f32(ref, "text_embeds", NULL, NULL);
    th_close("clip text_embeds", temb, r, (size_t)B * P, ATOL, RTOL);
    free(r);

    /* vision tower */
    tensor pt;
    size_t npx = 0;
    px = th_fixture_f32(ref, "pixel_values", &npx, &pt);
    if (!px || !CHECK(pt.ndim == 4 && pt.shape[0] == B && pt.shape[1] == C &&
                          pt.shape[2] == S && pt.shape[3] == S,
                      "pixel_values is (B, C, S, S)"))
        goto cleanup;
    iemb = malloc(sizeof(float) * B * P);
    vpool = malloc(sizeof(float) * B * Dv);
    vlast = malloc(sizeof(float) * B * N * Dv);
    one = malloc(sizeof(float) * N * Dv);
    CHECK(clip_vision_forward(vm, &a, px, B, S, S, NULL, vlast, vpool, iemb, &err) == OIR_OK,
          "vision forward: %s", err.message);
    CHECK(a.used == 0, "arena reset after vision forward");
    r = th_fixture_f32(ref, "vision_last_hidden_state", NULL, NULL);
    th_close("clip vision_last_hidden_state", vlast, r, (size_t)B * N * Dv, ATOL, RTOL);
    free(r);
    r = th_fixture_f32(ref, "vision_pooler_output", NULL, NULL);
    th_close("clip vision_pooler_output", vpool, r, (size_t)B * Dv, ATOL, RTOL);
    free(r);
    r = th_fixture_f32(ref, "image_embeds", NULL, NULL);
    th_close("clip image_embeds", iemb, r, (size_t)B * P, ATOL, RTOL);
    free(r);
    r = NULL;
    for (int b = 0; b < B; b++) {
        char what[64];
        CHECK(clip_vision_forward(vm, &a, px + (size_t)b * C * S * S, 1, S, S, NULL, one, NULL,
                                  NULL, &err) == OIR_OK,
              "vision row %d: %s", b, err.message);
        snprintf(what, sizeof what, "vision image %d alone vs batch", b);
        th_close(what, one, vlast + (size_t)b * N * Dv, (size_t)N * Dv, BATCH_TOL, BATCH_TOL);
    }

    /* masked attention: DESIGN.md §2.4 */
    const tensor *mt = st_find(ref, "patch_mask");
    if (!CHECK(mt && mt->type == DT_U8 && mt->ndim == 2 && mt->shape[0] == B &&
                   mt->shape[1] == G * G,
               "patch_mask is uint8 (B, G*G) = (%d, %d)", B, G * G))
        goto cleanup;
    pm = malloc((size_t)B * G * G);
    memcpy(pm, mt->data, (size_t)B * G * G);
    float *mpool = malloc(sizeof(float) * B * Dv), *memb = malloc(sizeof(float) * B * P);
    CHECK(clip_vision_forward(vm, &a, px, B, S, S, pm, vlast, mpool, memb, &err) == OIR_OK,
          "masked vision forward: %s", err.message);
    /* every query (outside patches too) sees the class token and the inside patches */
    r = th_fixture_f32(ref, "vision_last_hidden_state_masked", NULL, NULL);
    th_close("clip vision_last_hidden_state_masked", vlast, r, (size_t)B * N * Dv, ATOL, RTOL);
    free(r);
    r = th_fixture_f32(ref, "vision_pooler_output_masked", NULL, NULL);
    th_close("clip vision_pooler_output_masked", mpool, r, (size_t)B * Dv, ATOL, RTOL);
    free(r);
    r = th_fixture_f32(ref, "image_embeds_masked", NULL, NULL);
    th_close("clip image_embeds_masked", memb, r, (size_t)B * P, ATOL, RTOL);
    free(r);
    r = NULL;
    /* the mask changes the result; a full mask does not */
    CHECK(!th_close_quiet(memb, iemb, (size_t)B * P, ATOL, RTOL),
          "masked embeds differ from unmasked");
    {
        uint8_t *full = malloc((size_t)B * G * G);
        memset(full, 1, (size_t)B * G * G);
        CHECK(clip_vision_forward(vm, &a, px, B, S, S, full, NULL, NULL, memb, &err) == OIR_OK,
              "full-mask forward: %s", err.message);
        th_close("clip image_embeds, all-ones mask == no mask", memb, iemb, (size_t)B * P,
                 BATCH_TOL, BATCH_TOL);
        /* masked rows alone == batch, and an arena for one image (chunks) */
        for (int b = 0; b < B; b++) {
            char what[64];
            float e1[256];
            if (P > 256) break;
            CHECK(clip_vision_forward(vm, &a, px + (size_t)b * C * S * S, 1, S, S,
                                      pm + (size_t)b * G * G, NULL, NULL, e1, &err) == OIR_OK,
                  "masked row %d: %s", b, err.message);
            r = th_fixture_f32(ref, "image_embeds_masked", NULL, NULL);
            snprintf(what, sizeof what, "masked image %d alone vs batch ref", b);
            if (r) th_close(what, e1, r + (size_t)b * P, P, ATOL, RTOL);
            free(r);
            r = NULL;
        }
        arena small = {0};
        CHECK(arena_init(&small, clip_vision_arena_bytes(&vc, 1), &err) == OIR_OK, "arena");
        float *chunked = malloc(sizeof(float) * B * P);
        CHECK(clip_vision_forward(vm, &small, px, B, S, S, pm, NULL, NULL, chunked, &err) ==
                  OIR_OK,
              "chunked masked forward: %s", err.message);
        CHECK(clip_vision_forward(vm, &a, px, B, S, S, pm, NULL, NULL, memb, &err) == OIR_OK,
              "masked forward: %s", err.message);
        th_close("masked vision chunked (1-image arena) vs batch", chunked, memb, (size_t)B * P,
                 BATCH_TOL, BATCH_TOL);
        free(chunked);
        arena_free(&small);
        free(full);
    }
    free(mpool);
    free(memb);

    /* bad input */
    {
        int rc = clip_vision_forward(vm, &a, px, 1, S, S + 1, NULL, NULL, vpool, NULL, &err);
        CHECK(rc == OIR_E_SHAPE && contains(err.message, "image_size"),
              "wrong image size rejected: %d %s", rc, err.message);
        clip_vision_model *np = NULL;
        CHECK(clip_vision_load(&np, &vc, wf.w, 0, &err) == OIR_OK, "load without projection");
        rc = np ? clip_vision_forward(np, &a, px, 1, S, S, NULL, NULL, NULL, iemb, &err) : -1;
        CHECK(rc == OIR_E_ARG && contains(err.message, "visual_projection"),
              "image_embeds without projection rejected: %s", err.message);
        clip_vision_free(np);
    }

    /* the scorer's cosine on real embeddings, against a double-precision one */
    for (int b = 0; b < B; b++) {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < P; i++) {
            ab += (double)iemb[b * P + i] * temb[b * P + i];
            aa += (double)iemb[b * P + i] * iemb[b * P + i];
            bb += (double)temb[b * P + i] * temb[b * P + i];
        }
        float want = (float)(ab / sqrt(aa * bb)), got = clip_cosine(iemb + b * P, temb + b * P, P);
        CHECK(fabsf(got - want) <= 1e-6f, "clip_cosine row %d: %g vs %g", b, got, want);
    }
cleanup:
    arena_free(&a);
    clip_text_free(tm);
    clip_vision_free(vm);
    free(ids);
    free(px);
    free(temb);
    free(tpool);
    free(iemb);
    free(vpool);
    free(vlast);
    free(one);
    free(pm);
    st_close(ref);
    close_weights(&wf);
}

/* ---- cosine ------------------------------------------------------------ */

static void test_cosine(void) {
    printf("clip_cosine\n");
    const float a[3] = {1, 2, 3}, b[3] = {2, 4, 6}, c[3] = {-1, -2, -3}, z[3] = {0, 0, 0};
    const float o1[2] = {1, 0}, o2[2] = {0, 5};
    CHECK(fabsf(clip_cosine(a, b, 3) - 1.0f) <= 1e-6f, "parallel: 1");
    CHECK(fabsf(clip_cosine(a, c, 3) + 1.0f) <= 1e-6f, "opposite: -1");
    CHECK(fabsf(clip_cosine(o1, o2, 2)) <= 1e-6f, "orthogonal: 0");
    CHECK(clip_cosine(a, z, 3) == 0.0f && clip_cosine(z, z, 3) == 0.0f, "zero vector: 0");
}

/* ---- preprocessing ----------------------------------------------------- */

static void test_preprocess(void) {
    printf("preprocessing vs CLIPImageProcessor\n");
    oir_error err = {0};
    clip_preprocess_config pc = clip_preprocess_config_default(), pl;
    if (!CHECK(clip_preprocess_config_load(
                   &pl, th_fixture_path("sd/clip-tiny/preprocessor_config.json"), &err) == OIR_OK,
               "preprocessor_config.json: %s", err.message))
        return;
    st_file *ref = th_open_fixture("sd/ref_clip_preprocess.safetensors");
    if (!ref) return;
    /* image_i (H, W, 3) uint8; its pixel_values are pixel_values_i[0] when that
     * tensor exists, else pixel_values[i] (the processor's batch). */
    int n = 0;
    for (int i = 0;; i++) {
        char iname[32], pname[32];
        snprintf(iname, sizeof iname, "image_%d", i);
        const tensor *it = st_find(ref, iname);
        if (!it) break;
        n++;
        if (!CHECK(it->type == DT_U8 && it->ndim == 3 && it->shape[2] == 3,
                   "%s is uint8 (H, W, 3)", iname))
            continue;
        const int H = (int)it->shape[0], W = (int)it->shape[1];
        int oh, ow, row = i;
        clip_preprocess_size(&pl, H, W, &oh, &ow);
        snprintf(pname, sizeof pname, "pixel_values_%d", i);
        if (st_find(ref, pname))
            row = 0;
        else
            snprintf(pname, sizeof pname, "pixel_values");
        tensor pt;
        float *want = th_fixture_f32(ref, pname, NULL, &pt);
        if (!want || !CHECK(pt.ndim == 4 && pt.shape[0] > row && pt.shape[1] == 3 &&
                                pt.shape[2] == oh && pt.shape[3] == ow,
                            "%s is (B > %d, 3, %d, %d)", pname, row, oh, ow)) {
            free(want);
            continue;
        }
        image img = {0};
        CHECK(image_alloc(&img, W, H, 3, &err) == OIR_OK, "image_alloc");
        for (size_t k = 0; k < (size_t)H * W * 3; k++)
            img.data[k] = (float)((const uint8_t *)it->data)[k] / 255.0f;
        const size_t np = (size_t)3 * oh * ow;
        float *got = malloc(sizeof(float) * np);
        char what[96];
        int rc = clip_preprocess(&pl, &img, got, &err);
        snprintf(what, sizeof what, "preprocess %dx%d -> %dx%d", W, H, ow, oh);
        if (CHECK(rc == OIR_OK, "%s: %s", what, err.message))
            th_close(what, got, want + (size_t)row * np, np, 1e-6f, 0);
        free(got);
        free(want);
        image_free(&img);
    }
    /* the config matches the fixture's processor */
    float *mean = th_fixture_f32(ref, "image_mean", NULL, NULL);
    float *std = th_fixture_f32(ref, "image_std", NULL, NULL);
    if (mean && std) {
        th_close("preprocessor image_mean", pl.image_mean, mean, 3, 0, 0);
        th_close("preprocessor image_std", pl.image_std, std, 3, 0, 0);
        th_close("default image_mean is CLIP's", pc.image_mean, mean, 3, 0, 0);
        th_close("default image_std is CLIP's", pc.image_std, std, 3, 0, 0);
    }
    free(mean);
    free(std);
    CHECK(n > 0, "ref_clip_preprocess has images");
    st_close(ref);

    /* a crop larger than the resized image is refused */
    {
        clip_preprocess_config big = pc;
        big.crop_height = big.shortest_edge + 1;
        image img = {0};
        image_alloc(&img, 8, 8, 3, &err);
        float *out = malloc(sizeof(float) * 3 * 225 * 225);
        int rc = clip_preprocess(&big, &img, out, &err);
        CHECK(rc == OIR_E_UNSUPPORTED, "crop > resized refused: %s", err.message);
        image gray = {0};
        image_alloc(&gray, 8, 8, 1, &err);
        rc = clip_preprocess(&pc, &gray, out, &err);
        CHECK(rc == OIR_E_SHAPE, "1-channel image refused: %s", err.message);
        image_free(&gray);
        image_free(&img);
        free(out);
    }
}

/* ---- patch masks ------------------------------------------------------- */

static void test_patch_mask(void) {
    printf("clip_patch_mask\n");
    oir_error err = {0};
    clip_preprocess_config pc = clip_preprocess_config_default();
    const int grid = 14;
    uint8_t pm[14 * 14];
    /* square 64x64, object in rows 10..40, cols 20..63: same as mask_resize_nearest */
    image m = {0}, g = {0};
    image_alloc(&m, 64, 64, 1, &err);
    for (int y = 10; y < 40; y++)
        for (int x = 20; x < 64; x++) m.data[y * 64 + x] = 1.0f;
    CHECK(clip_patch_mask(pm, m.data, 64, 64, &pc, grid, &err) == OIR_OK, "%s", err.message);
    CHECK(mask_resize_nearest(&g, &m, grid, grid, &err) == OIR_OK, "%s", err.message);
    int same = 1, inside = 0;
    for (int i = 0; i < grid * grid; i++) {
        same &= pm[i] == (g.data[i] > 0.5f);
        inside += pm[i];
    }
    CHECK(same, "square: clip_patch_mask == mask_resize_nearest");
    /* rows 10..39 of 64 -> cells with floor(i * 64/14) in [10, 40): i = 3..8 (6 rows);
     * cols 20..63 -> j = 5..13 (9 cols) */
    CHECK(inside == 6 * 9, "square: %d inside cells, expected 54", inside);
    image_free(&g);
    image_free(&m);

    /* landscape 64 x 128: the resize makes it 224 x 448, the crop keeps columns 112..335,
     * i.e. columns 32..95 of the original. An object in columns 0..31 is outside the crop. */
    image_alloc(&m, 128, 64, 1, &err);
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 32; x++) m.data[y * 128 + x] = 1.0f;
    CHECK(clip_patch_mask(pm, m.data, 64, 128, &pc, grid, &err) == OIR_OK, "%s", err.message);
    inside = 0;
    for (int i = 0; i < grid * grid; i++) inside += pm[i];
    CHECK(inside == 0, "landscape: object left of the crop is outside (%d cells)", inside);
    /* object in columns 64..95 (the right half of the crop): cells j with
     * floor(32 + j * 64/14) >= 64 -> j >= 7 */
    memset(m.data, 0, sizeof(float) * 64 * 128);
    for (int y = 0; y < 64; y++)
        for (int x = 64; x < 96; x++) m.data[y * 128 + x] = 1.0f;
    CHECK(clip_patch_mask(pm, m.data, 64, 128, &pc, grid, &err) == OIR_OK, "%s", err.message);
    int ok = 1;
    for (int i = 0; i < grid; i++)
        for (int j = 0; j < grid; j++) ok &= pm[i * grid + j] == (j >= 7);
    CHECK(ok, "landscape: right half of the crop inside");
    image_free(&m);
    CHECK(clip_patch_mask(pm, NULL, 0, 10, &pc, grid, &err) != OIR_OK, "empty mask refused");
}

int main(void) {
    test_cosine();
    test_text_encoder();
    test_single_file();
    test_bad_configs();
    test_clip_model();
    test_preprocess();
    test_patch_mask();
    return th_summary();
}
