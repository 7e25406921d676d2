/* The cross-attention mask signal (src/edit/mask_attention.h) on the shipped tiny model
 * (models/tiny-shapes) and rendered shapes scenes of bench/scenes/edit:
 *   - the phrase's token positions (start token + the tokens before it), on prompts with
 *     capitals and punctuation, against tokenizer_find_phrase, and their errors;
 *   - for a few fixed cases, the map of the pair's `from` phrase is clearly higher inside the
 *     object's ground-truth mask than outside, and its peak lies on the object; the same
 *     criteria fail on the map shuffled and on a constant map (so they can fail);
 *   - determinism: the same seed gives the same bits, for 1 and 2 threads; another seed gives
 *     another map; the UNet rows are counted;
 *   - bad arguments give clear errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/noise.h"
#include "diffusion/sampler.h"
#include "edit/context.h"
#include "edit/mask_attention.h"
#include "harness.h"
#include "io/file.h"
#include "io/image.h"
#include "models/tokenizer.h"
#include "oir.h"

#define CASES_DIR "bench/scenes/edit"
#define MIN_CONTRAST 0.4 /* mean inside - mean outside, of a [0, 1] map */

/* ---- token positions ------------------------------------------------------ */

static void expect_tokens(const tokenizer *tok, const char *prompt, const char *phrase,
                          int want_pos, int want_n) {
    oir_error err = {0};
    int pos = -1, n = -1, fpos = -1, fn = -1;
    int rc = mask_attention_tokens(tok, prompt, phrase, 77, &pos, &n, &err);
    CHECK(rc == OIR_OK && pos == want_pos && n == want_n,
          "'%s' in \"%s\": tokens %d (+%d), expected %d (+%d) (%s)", phrase, prompt, pos, n,
          want_pos, want_n, rc ? err.message : "ok");
    /* the token search agrees where the phrase's first token match is the word */
    if (tokenizer_find_phrase(tok, prompt, phrase, 77, &fpos, &fn, &err) == OIR_OK)
        CHECK(fpos == pos && fn == n, "  tokenizer_find_phrase agrees: %d (+%d)", fpos, fn);
}

static void expect_tokens_error(const tokenizer *tok, const char *prompt, const char *phrase,
                                const char *needle) {
    oir_error err = {0};
    int pos = -1, n = -1;
    int rc = mask_attention_tokens(tok, prompt, phrase, 77, &pos, &n, &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, needle),
          "'%s' in \"%.40s...\": error naming '%s' (got %d: %s)", phrase, prompt, needle, rc,
          err.message);
}

/* tok: the SD 1.x CLIP vocabulary (built in); shapes: the tiny model's own. */
static void check_tokens(const tokenizer *tok, const tokenizer *shapes) {
    printf("token positions\n");
    /* a(1) red(2) circle(3) ,(4) next(5) to(6) a(7) blue(8) square(9) !(10) */
    expect_tokens(tok, "A Red Circle, next to a blue square!", "red circle", 2, 2);
    expect_tokens(tok, "A Red Circle, next to a blue square!", "BLUE SQUARE", 8, 2);
    /* big(1) ,(2) red(3) ;(4) circle(5) .(6) then(7) :(8) a(9) star(10) */
    expect_tokens(tok, "big, red;circle. then: a star", "star", 10, 1);
    expect_tokens(tok, "a green cross on the left and a orange heart at the bottom", "orange heart",
                  9, 2);
    /* the tiny model's vocabulary splits some words: the positions count its tokens */
    int32_t *pre = NULL;
    int n_pre = 0, pos = -1, n = -1, fpos = -1, fn = -1;
    oir_error e2 = {0};
    const char *sp = "a green cross on the left and a orange heart at the bottom";
    if (CHECK(tokenizer_tokenize(shapes, "a green cross on the left and a", &pre, &n_pre, &e2) ==
                      OIR_OK &&
                  mask_attention_tokens(shapes, sp, "Orange Heart", 77, &pos, &n, &e2) == OIR_OK &&
                  tokenizer_find_phrase(shapes, sp, "orange heart", 77, &fpos, &fn, &e2) == OIR_OK,
              "tiny vocabulary: %s", e2.message))
        CHECK(pos == 1 + n_pre && pos == fpos && n == fn,
              "tiny vocabulary: 'Orange Heart' at %d (+%d), 1 + %d before, token search %d (+%d)",
              pos, n, n_pre, fpos, fn);
    free(pre);
    /* the whole word, not the first matching token: "cats" is not "cat" */
    int32_t *ids = NULL;
    int n_cats = 0;
    oir_error err = {0};
    if (CHECK(tokenizer_tokenize(tok, "a cats", &ids, &n_cats, &err) == OIR_OK, "%s", err.message))
        expect_tokens(tok, "a cats and a cat", "cat", 1 + n_cats + 2, 1);
    free(ids);
    expect_tokens_error(tok, "a cat and a cat", "cat", "ambiguous");
    expect_tokens_error(tok, "a photo of a cat", "dog", "does not occur");
    expect_tokens_error(tok, "a photo of a cat", "", "does not occur");
    char longp[1200] = "";
    for (int i = 0; i < 80; i++)
        strcat(longp, "word ");
    strcat(longp, "red circle");
    expect_tokens_error(tok, longp, "red circle", "past the 75");
}

/* ---- scenes ---------------------------------------------------------------- */

typedef struct {
    char source[512], phrase[64];
    image rgb, mask; /* 64x64: RGB in [0, 1]; mask 0/1 */
} scene_case;

static int load_case(cJSON *cases, int index, scene_case *sc) {
    oir_error err = {0};
    memset(sc, 0, sizeof *sc);
    cJSON *c = cJSON_GetArrayItem(cases, index);
    cJSON *pair = c ? cJSON_GetArrayItem(cJSON_GetObjectItem(c, "pairs"), 0) : NULL;
    if (!CHECK(c && pair, "case %d in the manifest", index)) return 0;
    int obj = cJSON_GetObjectItem(pair, "object")->valueint;
    cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "objects"), obj);
    char path[512];
    snprintf(sc->source, sizeof sc->source, "%s",
             cJSON_GetObjectItem(c, "source_prompt")->valuestring);
    snprintf(sc->phrase, sizeof sc->phrase, "%s", cJSON_GetObjectItem(pair, "from")->valuestring);
    snprintf(path, sizeof path, CASES_DIR "/%s", cJSON_GetObjectItem(c, "image")->valuestring);
    if (!CHECK(image_load(&sc->rgb, path, &err) == OIR_OK, "%s", err.message)) return 0;
    snprintf(path, sizeof path, CASES_DIR "/%s", cJSON_GetObjectItem(o, "mask")->valuestring);
    return CHECK(mask_load(&sc->mask, path, &err) == OIR_OK, "%s", err.message);
}

/* Mean of map (lh, lw) over the latent cells whose pixels are mostly inside
 * the mask, minus the mean over the others; *peak_in: the arg-max cell has
 * object pixels within one cell of it. */
static double contrast(const float *map, int lh, int lw, const image *mask, int *peak_in) {
    int f = mask->width / lw;
    double in = 0, out = 0;
    int nin = 0, best = 0;
    for (int i = 1; i < lh * lw; i++)
        if (map[i] > map[best]) best = i;
    int by = best / lw, bx = best % lw, near = 0;
    for (int y = 0; y < lh; y++)
        for (int x = 0; x < lw; x++) {
            int cnt = 0;
            for (int yy = 0; yy < f; yy++)
                for (int xx = 0; xx < f; xx++)
                    cnt += mask->data[(size_t)(y * f + yy) * mask->width + x * f + xx] > 0.5f;
            if (cnt && abs(y - by) <= 1 && abs(x - bx) <= 1) near = 1;
            if (2 * cnt >= f * f)
                in += map[y * lw + x], nin++;
            else
                out += map[y * lw + x];
        }
    *peak_in = near;
    return nin ? in / nin - out / (lh * lw - nin) : -1;
}

static void check_maps(oir_context *ctx) {
    printf("attention maps on shapes scenes\n");
    oir_error err = {0};
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    sampler s;
    int have_s = 0;
    if (!CHECK(file_read_regular(CASES_DIR "/manifest.json", 16u << 20, "a case manifest", &text,
                                 &len, &err) == OIR_OK,
               "%s", err.message))
        return;
    root = cJSON_Parse(text);
    cJSON *cases = root ? cJSON_GetObjectItem(root, "cases") : NULL;
    if (!CHECK(cases, "manifest: cases")) goto cleanup;
    if (!CHECK(sampler_init(&s, oir_context_sd_model(ctx), 64, 1, 0, &err) == OIR_OK, "%s",
               err.message))
        goto cleanup;
    have_s = 1;
    int lh = s.lat_h, lw = s.lat_w;
    size_t lhw = (size_t)lh * lw;
    float pix[3 * 64 * 64], lat[4 * 16 * 16], map[256], again[256], shuffled[256], flat[256];
    if (!CHECK(s.lat_n <= sizeof lat / sizeof *lat && lhw <= 256, "latents fit")) goto cleanup;
    mask_attention_params p;
    mask_attention_defaults(&p);
    /* single-object and multi-object scenes the tiny model reads well */
    const int picks[] = {10, 20, 30, 100};
    for (size_t k = 0; k < sizeof picks / sizeof *picks; k++) {
        scene_case sc;
        if (!load_case(cases, picks[k], &sc)) {
            image_free(&sc.rgb), image_free(&sc.mask);
            continue;
        }
        image_to_tensor(&sc.rgb, pix);
        long rows = 0;
        int rc = sampler_encode_image(&s, pix, lat, &err);
        if (!rc)
            rc = mask_attention_map(ctx, lat, lh, lw, sc.source, sc.phrase, &p, map, &rows, &err);
        if (CHECK(rc == OIR_OK, "case %d: %s", picks[k], err.message)) {
            float lo = map[0], hi = map[0];
            for (size_t i = 0; i < lhw; i++)
                lo = fminf(lo, map[i]), hi = fmaxf(hi, map[i]);
            CHECK(lo == 0.0f && hi == 1.0f, "case %d: normalised to [0, 1] (%g..%g)", picks[k], lo,
                  hi);
            CHECK(rows == p.n_timesteps, "case %d: %ld UNet rows counted (%d timesteps)", picks[k],
                  rows, p.n_timesteps);
            int peak, peak_shuf, peak_flat;
            double ct = contrast(map, lh, lw, &sc.mask, &peak);
            /* the same values in a fixed scrambled order, and a constant map */
            for (size_t i = 0; i < lhw; i++)
                shuffled[i] = map[(i * 97 + 31) % lhw], flat[i] = 0.5f;
            double cs = contrast(shuffled, lh, lw, &sc.mask, &peak_shuf);
            double cf = contrast(flat, lh, lw, &sc.mask, &peak_flat);
            printf("  case %d '%s': inside - outside %.3f (shuffled %.3f), peak on the object %d\n",
                   picks[k], sc.phrase, ct, cs, peak);
            CHECK(ct >= MIN_CONTRAST && peak,
                  "case %d ('%s'): inside - outside %.3f (>= %.2f), peak on the object %d",
                  picks[k], sc.phrase, ct, MIN_CONTRAST, peak);
            CHECK(cs < MIN_CONTRAST && cf < MIN_CONTRAST,
                  "case %d: the criterion fails a shuffled map (%.3f) and a constant one (%.3f)",
                  picks[k], cs, cf);
            /* determinism: same seed, 1 and 2 threads; another seed */
            if (k == 0) {
                int threads = oir_get_threads();
                oir_set_threads(threads == 1 ? 2 : 1);
                rc = mask_attention_map(ctx, lat, lh, lw, sc.source, sc.phrase, &p, again, NULL,
                                        &err);
                oir_set_threads(threads);
                CHECK(rc == OIR_OK && !memcmp(map, again, sizeof(float) * lhw),
                      "case %d: the same map (bits) again with %d thread(s)", picks[k],
                      threads == 1 ? 2 : 1);
                mask_attention_params p2 = p;
                p2.seed = p.seed + 1;
                rc = mask_attention_map(ctx, lat, lh, lw, sc.source, sc.phrase, &p2, again, NULL,
                                        &err);
                CHECK(rc == OIR_OK && memcmp(map, again, sizeof(float) * lhw),
                      "case %d: another seed, another map", picks[k]);
                int pk;
                CHECK(contrast(again, lh, lw, &sc.mask, &pk) >= MIN_CONTRAST && pk,
                      "case %d: ... that still finds the object", picks[k]);
            }
        }
        image_free(&sc.rgb);
        image_free(&sc.mask);
    }

    /* bad arguments */
    printf("bad arguments\n");
    const char *src = "a pink hexagon in the center on a grass background";
    struct {
        const char *what, *phrase, *needle;
        int nt, div_min, div_max, lh;
        float lo, hi;
    } bad[] = {
        {"phrase not in the prompt", "blue star", "does not occur", 4, 2, 0, 16, 0.3f, 0.7f},
        {"n_timesteps 0", "pink hexagon", "n_timesteps 0", 0, 2, 0, 16, 0.3f, 0.7f},
        {"n_timesteps 65", "pink hexagon", "n_timesteps 65", 65, 2, 0, 16, 0.3f, 0.7f},
        {"strengths reversed", "pink hexagon", "strengths 0.7..0.3", 4, 2, 0, 16, 0.7f, 0.3f},
        {"strength 0", "pink hexagon", "strengths 0..0.5", 4, 2, 0, 16, 0.0f, 0.5f},
        {"min_grid_divisor 0", "pink hexagon", "min_grid_divisor 0", 4, 0, 0, 16, 0.3f, 0.7f},
        {"max < min divisor", "pink hexagon", "max_grid_divisor 1", 4, 2, 1, 16, 0.3f, 0.7f},
        {"no layer that coarse", "pink hexagon", "no cross-attention layer", 4, 16, 0, 16, 0.3f,
         0.7f},
        {"latent 15x15", "pink hexagon", "latent 15x15", 4, 2, 0, 15, 0.3f, 0.7f},
    };
    memset(lat, 0, sizeof lat);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mask_attention_params pb = p;
        pb.n_timesteps = bad[i].nt, pb.min_grid_divisor = bad[i].div_min;
        pb.max_grid_divisor = bad[i].div_max, pb.strength_lo = bad[i].lo,
        pb.strength_hi = bad[i].hi;
        long rows = 0;
        int rc = mask_attention_map(ctx, lat, bad[i].lh, bad[i].lh, src, bad[i].phrase, &pb, map,
                                    &rows, &err);
        CHECK(rc == OIR_E_ARG && strstr(err.message, bad[i].needle),
              "%s: OIR_E_ARG naming '%s' (got %d: %s)", bad[i].what, bad[i].needle, rc,
              err.message);
    }
    CHECK(mask_attention_map(ctx, NULL, lh, lw, src, "pink hexagon", &p, map, NULL, &err) ==
              OIR_E_ARG,
          "NULL latents: %s", err.message);
    CHECK(mask_attention_map(ctx, lat, lh, lw, src, "pink hexagon", NULL, map, NULL, &err) ==
              OIR_E_ARG,
          "NULL params: %s", err.message);
cleanup:
    if (have_s) sampler_free(&s);
    cJSON_Delete(root);
    free(text);
}

/* ---- noise ------------------------------------------------------------------- */

static void check_noise(void) {
    printf("noise\n");
    enum { N = 20001 };
    static float a[N], b[N];
    noise_gaussian(a, N, 7);
    noise_gaussian(b, N, 7);
    CHECK(!memcmp(a, b, sizeof a), "the same seed gives the same values");
    double m = 0, v = 0;
    for (int i = 0; i < N; i++)
        m += a[i];
    m /= N;
    for (int i = 0; i < N; i++)
        v += (a[i] - m) * (a[i] - m);
    v /= N;
    CHECK(fabs(m) < 0.03 && fabs(v - 1) < 0.05, "standard normal: mean %.4f, variance %.4f", m, v);
    noise_gaussian(b, N, 8);
    int same = 0;
    for (int i = 0; i < N; i++)
        same += a[i] == b[i];
    CHECK(same < 10, "seed 8 differs from seed 7 (%d equal values)", same);
}

int main(void) {
    check_noise();
    oir_context *ctx = NULL;
    oir_error err = {0};
    oir_context_params cp = oir_context_default_params();
    if (!CHECK(oir_context_load(&ctx, &cp, &err) == OIR_OK, "context: %s", err.message))
        return th_summary();
    tokenizer *clip_tok = NULL;
    if (CHECK(tokenizer_load_builtin(&clip_tok, &err) == OIR_OK, "built-in tokenizer: %s",
              err.message))
        check_tokens(clip_tok, oir_context_sd_model(ctx)->tokenizer);
    tokenizer_free(clip_tok);
    check_maps(ctx);
    oir_context_free(ctx);
    return th_summary();
}
