/* Photos as they are, below the CLI (io/image_fit.h, the scorer, the sheet,
 * the public helpers): working sizes, the minimal crop (a square working size
 * is exactly the authors' centre crop), masks through the same transform, the
 * composite (outside the masks the photo's bytes, the feather, deep inside
 * the resized edit, nothing outside the region), the scorer's padding of a
 * non-square image (= scoring the padded square), and sheets that keep the
 * candidates' aspect. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edit/scorer.h"
#include "edit/sheet.h"
#include "harness.h"
#include "io/image_fit.h"
#include "models/loader.h"
#include "oir.h"

/* deterministic 8-bit values */
static void fill(image *img, unsigned seed) {
    unsigned s = seed * 2654435761u + 1;
    for (size_t i = 0; i < (size_t)img->width * img->height * img->channels; i++) {
        s = s * 1103515245u + 12345u;
        img->data[i] = (float)((s >> 16) & 255) / 255.0f;
    }
}

static int same(const image *a, const image *b) {
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           !memcmp(a->data, b->data, (size_t)a->width * a->height * a->channels * sizeof(float));
}

static void test_sizes(void) {
    oir_error err = {0};
    int w, h;
    struct {
        int pw, ph, side, m, w, h;
    } cases[] = {
        {768, 512, 512, 64, 512, 320}, /* 341.3 -> 320 */
        {512, 768, 512, 64, 320, 512},
        {1000, 1000, 512, 64, 512, 512},
        {96, 64, 64, 16, 64, 48}, /* 42.7 -> 48 */
        {640, 480, 512, 64, 512, 384},
        {4000, 100, 512, 64, 512, 64}, /* at least one multiple */
        {100, 75, 96, 16, 96, 80}, /* 72 -> 4.5 multiples, half up */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = image_fit_size(cases[i].pw, cases[i].ph, cases[i].side, cases[i].m, &w, &h, &err);
        CHECK(rc == OIR_OK && w == cases[i].w && h == cases[i].h, "%dx%d photo at %d (m %d): %dx%d, expected %dx%d",
              cases[i].pw, cases[i].ph, cases[i].side, cases[i].m, w, h, cases[i].w, cases[i].h);
    }
    CHECK(image_fit_size(96, 64, 50, 16, &w, &h, &err) == OIR_E_ARG, "side 50 with m 16 refused");
    CHECK(image_fit_size(96, 64, 0, 16, &w, &h, &err) == OIR_E_ARG, "side 0 refused");
    image_fit f;
    image_fit_plan(&f, 768, 512, 512, 320); /* aspect 1.6 > 1.5: crop rows */
    CHECK(f.crop_x == 0 && f.crop_w == 768 && f.crop_h == 480 && f.crop_y == 16, "768x512 -> 512x320: rows 16..495");
    image_fit_plan(&f, 96, 64, 64, 48); /* 4:3 < 3:2: crop columns */
    CHECK(f.crop_y == 0 && f.crop_h == 64 && f.crop_w == 85 && f.crop_x == 5, "96x64 -> 64x48: 85 columns at 5");
    image_fit_plan(&f, 96, 64, 96, 64);
    CHECK(f.crop_x == 0 && f.crop_y == 0 && f.crop_w == 96 && f.crop_h == 64, "same aspect: the whole photo");
    CHECK(image_fit_feather(&f) == 2, "feather at scale 1: 2 pixels");
    image_fit_plan(&f, 1024, 1024, 512, 512);
    CHECK(image_fit_feather(&f) == 4, "feather at scale 2: 4 pixels");
}

/* A square working size is exactly the authors' centre crop + resize, for the
 * image (bicubic) and the mask (nearest). */
static void test_square_is_load_512(void) {
    oir_error err = {0};
    const int sizes[][2] = {{50, 37}, {37, 50}, {64, 64}, {20, 90}};
    for (int i = 0; i < 4; i++) {
        image photo = {0}, mask = {0}, a = {0}, b = {0}, sq = {0};
        image_alloc(&photo, sizes[i][0], sizes[i][1], 3, &err);
        image_alloc(&mask, sizes[i][0], sizes[i][1], 1, &err);
        fill(&photo, (unsigned)i);
        for (int j = 0; j < mask.width * mask.height; j++) mask.data[j] = (float)((j * 7) % 5 == 0);
        image_fit f;
        image_fit_plan(&f, photo.width, photo.height, 32, 32);
        CHECK(image_fit_image(&a, &photo, &f, &err) == OIR_OK &&
                  image_center_crop_resize(&b, &photo, 32, &err) == OIR_OK && same(&a, &b),
              "%dx%d at 32x32: image_fit_image == image_center_crop_resize", photo.width, photo.height);
        image_free(&a), image_free(&b);
        CHECK(image_fit_mask(&a, &mask, &f, &err) == OIR_OK && image_center_crop(&sq, &mask, &err) == OIR_OK &&
                  (sq.width == 32 ? image_copy(&b, &sq, &err) : image_resize_nearest(&b, &sq, 32, 32, &err)) ==
                      OIR_OK &&
                  same(&a, &b),
              "%dx%d at 32x32: image_fit_mask == mask_load_square's crop + nearest", photo.width, photo.height);
        image_free(&photo), image_free(&mask), image_free(&a), image_free(&b), image_free(&sq);
    }
}

static void test_composite(void) {
    oir_error err = {0};
    enum { PW = 60, PH = 30, W = 32, H = 24 };
    image_fit f;
    image_fit_plan(&f, PW, PH, W, H); /* aspect 4:3 of a 2:1 photo: 40 columns at 10 */
    CHECK(f.crop_x == 10 && f.crop_w == 40 && f.crop_h == 30, "plan: 40x30 at 10");
    image photo = {0}, edit = {0}, masks[2] = {{0}}, out = {0}, up = {0};
    image_alloc(&photo, PW, PH, 3, &err);
    image_alloc(&edit, W, H, 3, &err);
    fill(&photo, 1);
    fill(&edit, 2);
    image_alloc(&masks[0], PW, PH, 1, &err);
    image_alloc(&masks[1], PW, PH, 1, &err);
    for (int y = 5; y < 25; y++)
        for (int x = 0; x < 30; x++) masks[0].data[y * PW + x] = 1; /* reaches left of the region (x < 10) */
    for (int y = 8; y < 12; y++)
        for (int x = 40; x < 44; x++) masks[1].data[y * PW + x] = 1; /* 4x4: no pixel fully opaque at feather 2 */
    int feather = 2;
    if (!CHECK(image_fit_composite(&out, &photo, &edit, masks, 2, &f, feather, &err) == OIR_OK, "composite: %s",
               err.message))
        return;
    image_resize(&up, &edit, f.crop_w, f.crop_h, &err);
    long outside_diff = 0, deep = 0, deep_diff = 0, ramp_bad = 0;
    for (int y = 0; y < PH; y++)
        for (int x = 0; x < PW; x++) {
            size_t j = (size_t)y * PW + x;
            int in = (masks[0].data[j] > 0 || masks[1].data[j] > 0) && x >= 10 && x < 50;
            const float *o = out.data + j * 3, *p = photo.data + j * 3, *e = up.data + ((size_t)y * 40 + x - 10) * 3;
            if (!in) outside_diff += memcmp(o, p, 3 * sizeof(float)) != 0;
            /* mask 0 inside the region: distance to the edge (the region's left
             * edge x = 10 counts, the photo's edges do not) */
            if (masks[0].data[j] > 0 && x >= 10) {
                int d = x - 9;
                if (29 - x + 1 < d) d = 29 - x + 1;
                if (y - 4 < d) d = y - 4;
                if (25 - y < d) d = 25 - y;
                float a = d >= feather + 1 ? 1.0f : (float)d / (feather + 1);
                for (int c = 0; c < 3; c++) {
                    float want = a >= 1.0f ? e[c] : p[c] + a * (e[c] - p[c]);
                    if (a >= 1.0f) deep++, deep_diff += o[c] != want;
                    else ramp_bad += fabsf(o[c] - want) > 1e-6f;
                }
            }
        }
    CHECK(outside_diff == 0, "outside the masks and the region: the photo's values (%ld differ)", outside_diff);
    CHECK(deep > 0 && deep_diff == 0, "deep inside: the edit resized to the region, in place (%ld of %ld differ)",
          deep_diff, deep);
    CHECK(ramp_bad == 0, "the feather: alpha = distance / (feather + 1) inside the edge (%ld differ)", ramp_bad);
    /* the photo's own edge is not an edge of a mask: a mask along the top of
     * the photo stays opaque there */
    image top = {0}, out2 = {0};
    image_alloc(&top, PW, PH, 1, &err);
    for (int y = 0; y < 10; y++)
        for (int x = 10; x < 50; x++) top.data[y * PW + x] = 1;
    if (CHECK(image_fit_composite(&out2, &photo, &edit, &top, 1, &f, feather, &err) == OIR_OK, "%s", err.message)) {
        const float *o = out2.data + ((size_t)0 * PW + 30) * 3, *e = up.data + (size_t)20 * 3;
        CHECK(!memcmp(o, e, 3 * sizeof(float)), "row 0, the photo's top edge: opaque (the edit itself)");
    }
    /* a whole-photo mask with a whole-photo region: the resized edit */
    image all = {0}, out3 = {0};
    image_fit g;
    image_fit_plan(&g, PW, PH, 40, 20);
    image_alloc(&all, PW, PH, 1, &err);
    for (int j = 0; j < PW * PH; j++) all.data[j] = 1;
    image e2 = {0}, up2 = {0};
    image_alloc(&e2, 40, 20, 3, &err);
    fill(&e2, 3);
    image_resize(&up2, &e2, PW, PH, &err);
    CHECK(g.crop_w == PW && image_fit_composite(&out3, &photo, &e2, &all, 1, &g, 3, &err) == OIR_OK &&
              same(&out3, &up2),
          "mask and region = the photo: edited.png is the resized edit");
    /* errors */
    image bad = {0}, o4 = {0};
    image_alloc(&bad, PW - 1, PH, 1, &err);
    CHECK(image_fit_composite(&o4, &photo, &edit, &bad, 1, &f, 2, &err) == OIR_E_SHAPE, "mask of another size refused");
    CHECK(image_fit_composite(&o4, &photo, &e2, masks, 1, &f, 2, &err) == OIR_E_SHAPE, "edit of another size refused");
    image_free(&photo), image_free(&edit), image_free(&masks[0]), image_free(&masks[1]), image_free(&out);
    image_free(&up), image_free(&top), image_free(&out2), image_free(&all), image_free(&out3), image_free(&e2);
    image_free(&up2), image_free(&bad);
}

/* The public helpers agree with io/image_fit.h. */
static void test_public_helpers(void) {
    oir_error err = {0};
    enum { PW = 50, PH = 20, W = 24, H = 12 };
    unsigned char photo[PW * PH * 3], mask[PW * PH], edit[W * H * 3];
    for (int i = 0; i < PW * PH * 3; i++) photo[i] = (unsigned char)(i * 37 % 251);
    for (int i = 0; i < W * H * 3; i++) edit[i] = (unsigned char)(i * 11 % 253);
    for (int i = 0; i < PW * PH; i++) mask[i] = (unsigned char)(i % PW >= 20 && i % PW < 35 && i / PW >= 4);
    unsigned char *fit = NULL, *mfit = NULL, *comp = NULL;
    image p = {0}, m = {0}, e = {0}, a = {0}, b = {0}, c = {0};
    image_alloc(&p, PW, PH, 3, &err), image_alloc(&m, PW, PH, 1, &err), image_alloc(&e, W, H, 3, &err);
    for (int i = 0; i < PW * PH * 3; i++) p.data[i] = photo[i] / 255.0f;
    for (int i = 0; i < PW * PH; i++) m.data[i] = mask[i];
    for (int i = 0; i < W * H * 3; i++) e.data[i] = edit[i] / 255.0f;
    image_fit f;
    image_fit_plan(&f, PW, PH, W, H);
    int ok = oir_image_fit(photo, PW, PH, 3, W, H, &fit, &err) == OIR_OK &&
             oir_image_fit(mask, PW, PH, 1, W, H, &mfit, &err) == OIR_OK &&
             image_fit_image(&a, &p, &f, &err) == OIR_OK && image_fit_mask(&b, &m, &f, &err) == OIR_OK;
    if (CHECK(ok, "oir_image_fit: %s", err.message)) {
        int d = 0;
        for (int i = 0; i < W * H * 3; i++) d += fit[i] != (unsigned char)lrintf(a.data[i] * 255.0f);
        for (int i = 0; i < W * H; i++) d += mfit[i] != (b.data[i] > 0.5f);
        CHECK(d == 0, "oir_image_fit == image_fit_image / image_fit_mask (%d differ)", d);
    }
    const unsigned char *ms[1] = {mask};
    ok = oir_image_composite(photo, PW, PH, edit, W, H, ms, 1, &comp, &err) == OIR_OK &&
         image_fit_composite(&c, &p, &e, &m, 1, &f, image_fit_feather(&f), &err) == OIR_OK;
    if (CHECK(ok, "oir_image_composite: %s", err.message)) {
        int d = 0, outside = 0;
        for (int i = 0; i < PW * PH * 3; i++) {
            d += comp[i] != (unsigned char)(c.data[i] * 255.0f + 0.5f); /* the helpers' rounding */
            if (!mask[i / 3]) outside += comp[i] != photo[i];
        }
        CHECK(d == 0 && outside == 0, "oir_image_composite == image_fit_composite (%d differ), photo bytes outside (%d)", d,
              outside);
    }
    unsigned char *none = NULL;
    CHECK(oir_image_fit(photo, PW, PH, 2, W, H, &none, &err) == OIR_E_ARG && !none, "2 channels refused");
    CHECK(oir_image_fit(photo, PW, PH, 3, 0, H, &none, &err) == OIR_E_ARG, "width 0 refused");
    CHECK(oir_image_composite(photo, PW, PH, edit, W, H, ms, -1, &none, &err) == OIR_E_ARG, "negative mask count refused");
    oir_free(fit), oir_free(mfit), oir_free(comp);
    image_free(&p), image_free(&m), image_free(&e), image_free(&a), image_free(&b), image_free(&c);
}

/* A non-square image is scored as the padded square (scorer.h): the same
 * numbers, bit for bit, as scoring that square by hand. */
static void test_scorer_padding(void) {
    oir_error err = {0};
    clip_model *clip = NULL;
    if (!CHECK(clip_model_load(&clip, th_fixture_path("sd/clip-tiny"), &err) == OIR_OK, "clip: %s", err.message)) return;
    enum { W = 24, H = 16, S = 24, B = 3 };
    image orig = {0}, mask = {0}, cand[B], sq_orig = {0}, sq_mask = {0}, sq_cand[B];
    image_alloc(&orig, W, H, 3, &err);
    image_alloc(&mask, W, H, 1, &err);
    fill(&orig, 7);
    for (int y = 3; y < 12; y++)
        for (int x = 14; x < 22; x++) mask.data[y * W + x] = 1;
    /* the pad colour: CLIP's mean, rounded to 8 bits; rows 4..19 hold the image */
    image_alloc(&sq_orig, S, S, 3, &err);
    image_alloc(&sq_mask, S, S, 1, &err);
    for (int i = 0; i < S * S; i++)
        for (int c = 0; c < 3; c++) sq_orig.data[i * 3 + c] = nearbyintf(clip->preprocess.image_mean[c] * 255.0f) / 255.0f;
    for (int b = 0; b < B; b++) {
        memset(&cand[b], 0, sizeof cand[b]);
        image_alloc(&cand[b], W, H, 3, &err);
        fill(&cand[b], 100u + (unsigned)b);
        image_copy(&sq_cand[b], &sq_orig, &err);
    }
    for (int y = 0; y < H; y++) {
        memcpy(sq_orig.data + (size_t)(y + 4) * S * 3, orig.data + (size_t)y * W * 3, W * 3 * sizeof(float));
        memcpy(sq_mask.data + (size_t)(y + 4) * S, mask.data + (size_t)y * W, W * sizeof(float));
        for (int b = 0; b < B; b++)
            memcpy(sq_cand[b].data + (size_t)(y + 4) * S * 3, cand[b].data + (size_t)y * W * 3, W * 3 * sizeof(float));
    }
    scorer a = {0}, s = {0};
    float text[64], ea[B], ba[B], es[B], bs[B];
    int ok = scorer_init(&a, clip, &orig, &err) == OIR_OK;
    ok = ok && scorer_init(&s, clip, &sq_orig, &err) == OIR_OK;
    ok = ok && a.P <= 64 && scorer_text(&a, "red circle", text, &err) == OIR_OK &&
         scorer_score(&a, cand, B, &mask, text, ea, ba, &err) == OIR_OK &&
         scorer_score(&s, sq_cand, B, &sq_mask, text, es, bs, &err) == OIR_OK;
    if (CHECK(ok, "scorers: %s", err.message)) {
        CHECK(!memcmp(ea, es, sizeof ea) && !memcmp(ba, bs, sizeof ba),
              "24x16: edit %.6f %.6f %.6f, background %.6f ... == the padded 24x24 square's", ea[0], ea[1], ea[2], ba[0]);
        float e0[1], b0[1];
        CHECK(scorer_score(&a, &orig, 1, &mask, text, e0, b0, &err) == OIR_OK && b0[0] == 0.0f,
              "the original against itself: background score 0");
    }
    if (a.clip) scorer_free(&a);
    if (s.clip) scorer_free(&s);
    image_free(&orig), image_free(&mask), image_free(&sq_orig), image_free(&sq_mask);
    for (int b = 0; b < B; b++) image_free(&cand[b]), image_free(&sq_cand[b]);
    clip_model_free(clip);
}

/* Thumbnails keep the candidates' aspect: 48x32 candidates -> 96x64 tiles. */
static void test_sheet_aspect(void) {
    enum { T = 3 };
    oir_error err = {0};
    image c[T], out = {0};
    float e[T] = {0, 0.5f, 1}, b[T] = {1, 0.5f, 0}, t[T] = {1, 1, 1};
    for (int k = 0; k < T; k++) {
        image_alloc(&c[k], 48, 32, 3, &err);
        for (int i = 0; i < 48 * 32; i++) c[k].data[i * 3 + 1] = 1.0f; /* green */
    }
    if (CHECK(sheet_render(&out, c, T, e, b, t, 0, NULL, "wide", &err) == OIR_OK, "sheet: %s", err.message)) {
        /* head 22, one row of 64 + 16 px, the plot (150) and legend (40) */
        CHECK(out.height == 22 + 80 + 150 + 40, "sheet height %d for 64 px tall tiles", out.height);
        /* tile 1 starts at x = 6 + 102: its last column (x + 95) is green, the next (x + 96) is not */
        const float *in = out.data + ((size_t)(22 + 63) * out.width + 6 + 102 + 95) * 3;
        const float *past = out.data + ((size_t)(22 + 63) * out.width + 6 + 102 + 96) * 3;
        const float *below = out.data + ((size_t)(22 + 64) * out.width + 6 + 102 + 10) * 3;
        CHECK(in[1] == 1.0f && in[0] == 0.0f, "tile 1 is 96 px wide");
        CHECK(!(past[1] == 1.0f && past[0] == 0.0f) && !(below[1] == 1.0f && below[0] == 0.0f), "and 64 px tall");
        image_free(&out);
    }
    for (int k = 0; k < T; k++) image_free(&c[k]);
}

int main(void) {
    test_sizes();
    test_square_is_load_512();
    test_composite();
    test_public_helpers();
    test_scorer_padding();
    test_sheet_aspect();
    return th_summary();
}
