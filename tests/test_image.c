/* Images and masks: decoding every PNG/JPEG flavour against Pillow's pixels,
 * load_512 crop+resize and plain resizes against Pillow 9.4, model-tensor
 * conversion against torch, PNG round trip, masks (file, box, grid), and bad
 * input (missing, truncated, corrupt, absurd sizes, wrong formats), plus a
 * small truncation/bit-flip fuzz that must never crash.
 *
 * Fixtures: tests/fixtures/images/, made by tools/fixtures/make_image_fixtures.py.
 * Tolerances: decoding, tensors and masks are exact (0). Resizes are compared
 * in 8-bit units: at most 1/255 anywhere and at most 0.5% of values off by
 * 1/255 (measured: 0 values differ, i.e. bit-exact with Pillow 9.4.0). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "io/image.h"

static st_file *REF;
static char tmpdir[256];

static const char *fx(const char *name) {
    static char buf[8][512];
    static int slot;
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s", name);
    slot = (slot + 1) % 8;
    snprintf(buf[slot], sizeof buf[slot], "%s", th_fixture_path(rel));
    return buf[slot];
}

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmpdir, name);
    return buf[slot];
}

/* Reference (H, W, C) uint8 tensor, NULL (and a failed check) when absent. */
static const tensor *ref_u8(const char *name) {
    const tensor *t = REF ? st_find(REF, name) : NULL;
    if (!CHECK(t != NULL, "fixture tensor %s is missing", name)) return NULL;
    if (!CHECK(t->type == DT_U8 && t->ndim == 3, "fixture tensor %s: expected U8 (H, W, C)", name))
        return NULL;
    return t;
}

/* Compares an image with a U8 reference in 8-bit units. max_off: largest
 * allowed |diff| in 1/255 steps; max_frac: largest allowed fraction of
 * values that differ at all. */
static void cmp_u8(const char *what, const image *got, const tensor *ref, int max_off,
                   double max_frac) {
    if (!ref) return;
    if (!CHECK(got->data && got->height == ref->shape[0] && got->width == ref->shape[1] &&
                   got->channels == ref->shape[2],
               "%s: size %dx%dx%d, reference (H, W, C) = (%lld, %lld, %lld)", what, got->width,
               got->height, got->channels, (long long)ref->shape[0], (long long)ref->shape[1],
               (long long)ref->shape[2]))
        return;
    const uint8_t *r = ref->data;
    size_t n = (size_t)got->width * got->height * got->channels, ndiff = 0, first = (size_t)-1;
    int maxd = 0, nonq = 0;
    for (size_t i = 0; i < n; i++) {
        float v = got->data[i] * 255.0f;
        int q = (int)lrintf(v);
        if (fabsf(v - (float)q) > 1e-3f) nonq++;
        int d = abs(q - (int)r[i]);
        if (d) {
            ndiff++;
            if (first == (size_t)-1) first = i;
        }
        if (d > maxd) maxd = d;
    }
    double frac = (double)ndiff / (double)n;
    int ok = maxd <= max_off && frac <= max_frac && nonq == 0;
    CHECK(ok, "%s: %zu of %zu values differ (max %d/255, first at %zu), %d not multiples of 1/255",
          what, ndiff, n, maxd, first, nonq);
    if (ok)
        printf("  ok   %-40s n=%zu differ=%zu max=%d/255\n", what, n, ndiff, maxd);
}

/* A 0/1 mask against a U8 0/1 reference, exactly. */
static void cmp_mask(const char *what, const image *got, const tensor *ref) {
    if (!ref) return;
    if (!CHECK(got->data && got->channels == 1 && got->height == ref->shape[0] &&
                   got->width == ref->shape[1] && ref->shape[2] == 1,
               "%s: mask %dx%dx%d, reference (H, W, C) = (%lld, %lld, %lld)", what, got->width,
               got->height, got->channels, (long long)ref->shape[0], (long long)ref->shape[1],
               (long long)ref->shape[2]))
        return;
    const uint8_t *r = ref->data;
    size_t n = (size_t)got->width * got->height, ndiff = 0, ones = 0;
    for (size_t i = 0; i < n; i++) {
        ndiff += got->data[i] != (float)r[i];
        ones += r[i] != 0;
    }
    if (CHECK(ndiff == 0, "%s: %zu of %zu mask values differ", what, ndiff, n))
        printf("  ok   %-40s n=%zu ones=%zu differ=0\n", what, n, ones);
}

/* ------------------------------------------------------------ decoding */

static void test_decode(void) {
    static const char *files[] = {
        "rgb_37x23.png",    "rgba_37x23.png",  "gray_37x23.png", "graya_37x23.png",
        "palette_37x23.png", "rgb16_37x23.png", "gray16_37x23.png", "gray2_37x23.png",
        "adam7_37x23.png",  "rgb_37x23.jpg",   "gray_37x23.jpg", "prog_37x23.jpg",
        "tall_22x37.png",   "bad_scan.jpg", /* random entropy data: decodes as noise, as Pillow */
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        image img;
        oir_error err = {0};
        int rc = image_load(&img, fx(files[i]), &err);
        if (!CHECK(rc == OIR_OK, "load %s: %s", files[i], err.message)) continue;
        char name[128], what[128];
        snprintf(name, sizeof name, "dec_%s", files[i]);
        snprintf(what, sizeof what, "decode %s", files[i]);
        cmp_u8(what, &img, ref_u8(name), 0, 0.0);
        image_free(&img);
    }
    /* Format by magic bytes: a JPEG named .png decodes as the JPEG. */
    image img;
    oir_error err = {0};
    if (CHECK(image_load(&img, fx("jpeg_named.png"), &err) == OIR_OK, "jpeg_named.png: %s",
              err.message)) {
        cmp_u8("decode jpeg_named.png (magic bytes)", &img, ref_u8("dec_rgb_37x23.jpg"), 0, 0.0);
        image_free(&img);
    }
}

/* ------------------------------------------------------------- resizing */

static void test_center_crop_resize(void) {
    static const struct { const char *name, *file; } cases[] = {
        {"rgb", "rgb_37x23.png"}, {"tall", "tall_22x37.png"},
        {"big", "rgb_120x90.png"}, {"gray", "gray_37x23.png"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int s = 16; s <= 64; s += 48) {
            image img;
            oir_error err = {0};
            if (!CHECK(image_load_square(&img, fx(cases[i].file), s, &err) == OIR_OK,
                       "load_square %s: %s", cases[i].file, err.message))
                continue;
            char name[64], what[96];
            snprintf(name, sizeof name, "ccr%d_%s", s, cases[i].name);
            snprintf(what, sizeof what, "load_512-like %s -> %d", cases[i].file, s);
            cmp_u8(what, &img, ref_u8(name), 1, 0.005);
            image_free(&img);
        }
    /* Crop offsets: 37x23 keeps columns 7..29; 22x37 keeps rows 7..28. */
    image a, c;
    oir_error err = {0};
    if (image_load(&a, fx("rgb_37x23.png"), &err) == OIR_OK) {
        CHECK(image_center_crop(&c, &a, &err) == OIR_OK && c.width == 23 && c.height == 23,
              "crop 37x23 -> 23x23");
        if (c.data)
            CHECK(memcmp(c.data, a.data + 7 * 3, 23 * 3 * sizeof(float)) == 0 &&
                      memcmp(c.data + 22 * 23 * 3, a.data + (22 * 37 + 7) * 3, 23 * 3 * sizeof(float)) == 0,
                  "crop 37x23 takes columns 7..29");
        image_free(&c);
        /* Already the right size: Pillow returns a copy, so do we. */
        image sq;
        CHECK(image_center_crop_resize(&sq, &a, 23, &err) == OIR_OK &&
                  memcmp(sq.data, a.data + 7 * 3, 23 * 3 * sizeof(float)) == 0,
              "center_crop_resize to the crop size is a copy");
        image_free(&sq);
        image_free(&a);
    }
    if (image_load(&a, fx("tall_22x37.png"), &err) == OIR_OK) {
        CHECK(image_center_crop(&c, &a, &err) == OIR_OK && c.width == 22 && c.height == 22 &&
                  memcmp(c.data, a.data + 7 * 22 * 3, 22 * 22 * 3 * sizeof(float)) == 0,
              "crop 22x37 takes rows 7..28");
        image_free(&c);
        image_free(&a);
    }
}

static void test_plain_resize(void) {
    static const int sizes[][2] = {{20, 30}, {80, 50}, {37, 10}, {5, 23}, {37, 23}, {1, 1}};
    image a;
    oir_error err = {0};
    if (!CHECK(image_load(&a, fx("rgb_37x23.png"), &err) == OIR_OK, "%s", err.message)) return;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int w = sizes[i][0], h = sizes[i][1];
        char name[64], what[96];
        image r;
        if (CHECK(image_resize(&r, &a, w, h, &err) == OIR_OK, "resize %dx%d: %s", w, h, err.message)) {
            snprintf(name, sizeof name, "rs_rgb_%dx%d", w, h);
            snprintf(what, sizeof what, "bicubic 37x23 -> %dx%d", w, h);
            cmp_u8(what, &r, ref_u8(name), 1, 0.005);
            image_free(&r);
        }
        if (CHECK(image_resize_nearest(&r, &a, w, h, &err) == OIR_OK, "nearest %dx%d: %s", w, h,
                  err.message)) {
            snprintf(name, sizeof name, "nn_rgb_%dx%d", w, h);
            snprintf(what, sizeof what, "nearest 37x23 -> %dx%d", w, h);
            cmp_u8(what, &r, ref_u8(name), 0, 0.0);
            image_free(&r);
        }
    }
    /* 1-channel (Pillow mode L). */
    image g;
    if (CHECK(image_alloc(&g, a.width, a.height, 1, &err) == OIR_OK, "alloc")) {
        image gl;
        if (image_load(&gl, fx("gray_37x23.png"), &err) == OIR_OK) {
            for (int i = 0; i < a.width * a.height; i++) g.data[i] = gl.data[i * 3];
            image_free(&gl);
        }
        static const int gs[][2] = {{16, 16}, {50, 40}};
        for (int i = 0; i < 2; i++) {
            image r;
            char name[64], what[96];
            if (CHECK(image_resize(&r, &g, gs[i][0], gs[i][1], &err) == OIR_OK, "%s", err.message)) {
                snprintf(name, sizeof name, "rs_gray_%dx%d", gs[i][0], gs[i][1]);
                snprintf(what, sizeof what, "bicubic L 37x23 -> %dx%d", gs[i][0], gs[i][1]);
                cmp_u8(what, &r, ref_u8(name), 1, 0.005);
                image_free(&r);
            }
        }
        image_free(&g);
    }
    image_free(&a);
    /* Strong downscale (ksize 27 taps) and mixed up/down. */
    image b;
    if (CHECK(image_load(&b, fx("rgb_120x90.png"), &err) == OIR_OK, "%s", err.message)) {
        static const int bs[][2] = {{7, 9}, {150, 16}};
        for (int i = 0; i < 2; i++) {
            image r;
            char name[64], what[96];
            if (CHECK(image_resize(&r, &b, bs[i][0], bs[i][1], &err) == OIR_OK, "%s", err.message)) {
                snprintf(name, sizeof name, "rs_big_%dx%d", bs[i][0], bs[i][1]);
                snprintf(what, sizeof what, "bicubic 120x90 -> %dx%d", bs[i][0], bs[i][1]);
                cmp_u8(what, &r, ref_u8(name), 1, 0.005);
                image_free(&r);
            }
        }
        image r;
        CHECK(image_resize(&r, &b, 0, 5, &err) != OIR_OK, "resize to width 0 refused");
        CHECK(image_resize(&r, &b, 20000, 5, &err) != OIR_OK, "resize to 20000 wide refused");
        CHECK(r.data == NULL, "failed resize leaves the output empty");
        image_free(&b);
    }
}

/* -------------------------------------------------------------- tensors */

static void test_tensors(void) {
    image a;
    oir_error err = {0};
    if (!CHECK(image_load(&a, fx("rgb_37x23.png"), &err) == OIR_OK, "%s", err.message)) return;
    size_t n = 0;
    float *ref = th_fixture_f32(REF, "tensor_rgb", &n, NULL);
    float *got = malloc(3 * 23 * 37 * sizeof(float));
    if (ref && CHECK(n == 3 * 23 * 37, "tensor_rgb has %zu values", n)) {
        image_to_tensor(&a, got);
        th_close("image_to_tensor == u8/127.5-1 (exact)", got, ref, n, 0, 0);
    }
    free(ref);
    free(got);
    image_free(&a);

    float *x = th_fixture_f32(REF, "from_tensor_in", &n, NULL);
    float *img01 = th_fixture_f32(REF, "from_tensor_img", NULL, NULL);
    if (x && img01) {
        image b;
        if (CHECK(image_from_tensor(&b, x, 3, 10, 6, &err) == OIR_OK, "%s", err.message)) {
            th_close("image_from_tensor == (x/2+0.5).clamp(0,1)", b.data, img01, n, 0, 0);
            image q;
            image_copy(&q, &b, &err);
            image_quantize(&q, 0);
            cmp_u8("quantize round (numpy_to_pil)", &q, ref_u8("from_tensor_round"), 0, 0.0);
            image_free(&q);
            image_copy(&q, &b, &err);
            image_quantize(&q, 1);
            cmp_u8("quantize truncate (latent2image)", &q, ref_u8("from_tensor_trunc"), 0, 0.0);
            image_free(&q);
            image_free(&b);
        }
        /* NaN maps to 0, out-of-range values clamp. */
        float odd[3] = {NAN, 5.0f, -5.0f};
        if (image_from_tensor(&b, odd, 1, 3, 1, &err) == OIR_OK) {
            CHECK(b.data[0] == 0.0f && b.data[1] == 1.0f && b.data[2] == 0.0f,
                  "from_tensor NaN/clamp: %g %g %g", b.data[0], b.data[1], b.data[2]);
            image_free(&b);
        }
    }
    free(x);
    free(img01);
}

/* ----------------------------------------------------------- PNG write */

static void test_png_write(void) {
    image a, b;
    oir_error err = {0};
    if (!CHECK(image_load(&a, fx("rgb_37x23.jpg"), &err) == OIR_OK, "%s", err.message)) return;
    const char *out = tmp_path("out.png");
    CHECK(image_save_png(&a, out, &err) == OIR_OK, "save: %s", err.message);
    CHECK(access(tmp_path("out.png.tmp"), F_OK) != 0, "no .tmp left after save");
    if (CHECK(image_load(&b, out, &err) == OIR_OK, "reload: %s", err.message)) {
        CHECK(b.width == a.width && b.height == a.height &&
                  memcmp(a.data, b.data, (size_t)a.width * a.height * 3 * sizeof(float)) == 0,
              "PNG RGB round trip is exact");
        image_free(&b);
    }
    /* Overwrite an existing file. */
    a.data[0] = 0.5f; /* rounds half to even: 127.5 -> 128 */
    CHECK(image_save_png(&a, out, &err) == OIR_OK, "overwrite: %s", err.message);
    if (image_load(&b, out, &err) == OIR_OK) {
        CHECK(lrintf(b.data[0] * 255) == 128, "0.5 saved as 128, got %ld", lrintf(b.data[0] * 255));
        image_free(&b);
    }
    /* Gray (mask) round trip. */
    image m;
    if (mask_load(&m, fx("mask_37x23.png"), &err) == OIR_OK) {
        const char *mo = tmp_path("mask.png");
        CHECK(image_save_png(&m, mo, &err) == OIR_OK, "save gray: %s", err.message);
        image m2;
        if (CHECK(mask_load(&m2, mo, &err) == OIR_OK, "reload gray: %s", err.message)) {
            CHECK(memcmp(m.data, m2.data, (size_t)m.width * m.height * sizeof(float)) == 0,
                  "PNG gray mask round trip is exact");
            image_free(&m2);
        }
        if (image_load(&m2, mo, &err) == OIR_OK) {
            CHECK(m2.data[(5 * 37 + 10) * 3 + 2] == 1.0f && m2.data[2] == 1.0f,
                  "gray PNG written with values 0/255");
            image_free(&m2);
        }
        image_free(&m);
    }
    /* Unwritable destination: error names the path, nothing left behind. */
    const char *bad = tmp_path("no_such_dir/x.png");
    int rc = image_save_png(&a, bad, &err);
    CHECK(rc == OIR_E_IO && strstr(err.message, "no_such_dir/x.png"), "unwritable: rc %d %s", rc,
          err.message);
    image two = {.width = 2, .height = 2, .channels = 2, .data = a.data};
    CHECK(image_save_png(&two, tmp_path("two.png"), &err) == OIR_E_ARG, "2 channels refused");
    image_free(&a);
}

/* ---------------------------------------------------------------- masks */

static void test_masks(void) {
    image m, img;
    oir_error err = {0};
    if (CHECK(mask_load(&m, fx("mask_37x23.png"), &err) == OIR_OK, "%s", err.message)) {
        CHECK(m.channels == 1, "mask has 1 channel");
        cmp_mask("mask from gray PNG (non-zero = object)", &m, ref_u8("mask_37x23"));
        /* Size check against images. */
        if (image_load(&img, fx("rgb_37x23.png"), &err) == OIR_OK) {
            CHECK(mask_check_size(&m, "m.png", &img, "i.png", &err) == OIR_OK, "same size ok");
            image_free(&img);
        }
        if (image_load(&img, fx("tall_22x37.png"), &err) == OIR_OK) {
            int rc = mask_check_size(&m, "m.png", &img, "photo.png", &err);
            CHECK(rc == OIR_E_SHAPE && strstr(err.message, "m.png") && strstr(err.message, "photo.png") &&
                      strstr(err.message, "37x23") && strstr(err.message, "22x37"),
                  "size mismatch names both: %s", err.message);
            printf("  ok   mask size mismatch -> %s\n", err.message);
            image_free(&img);
        }
        image_free(&m);
    }
    if (CHECK(mask_load(&m, fx("mask_rgba_37x23.png"), &err) == OIR_OK, "%s", err.message)) {
        cmp_mask("mask from RGBA PNG (any of R,G,B)", &m, ref_u8("mask_rgba_37x23"));
        image_free(&m);
    }
    for (int s = 16; s <= 64; s += 48) {
        char name[32], what[64];
        snprintf(name, sizeof name, "mask_sq%d", s);
        snprintf(what, sizeof what, "mask crop + nearest -> %d", s);
        if (CHECK(mask_load_square(&m, fx("mask_37x23.png"), s, &err) == OIR_OK, "%s", err.message)) {
            cmp_mask(what, &m, ref_u8(name));
            image_free(&m);
        }
    }

    /* Boxes. */
    int box[4];
    CHECK(mask_parse_box(" 10, 5,30 ,15 ", box, &err) == OIR_OK && box[0] == 10 && box[1] == 5 &&
              box[2] == 30 && box[3] == 15,
          "parse box: %s", err.message);
    static const char *bad_specs[] = {"1,2,3", "a,b,c,d", "1,2,3,4,5", "", "1,2,3,4x", "1;2;3;4",
                                      "99999999999,1,2,3"};
    for (size_t i = 0; i < sizeof bad_specs / sizeof *bad_specs; i++) {
        int rc = mask_parse_box(bad_specs[i], box, &err);
        CHECK(rc == OIR_E_ARG && strstr(err.message, bad_specs[i]), "bad box \"%s\": rc %d %s",
              bad_specs[i], rc, err.message);
    }
    int b1[4] = {10, 5, 30, 15};
    if (CHECK(mask_from_box(&m, 37, 23, b1, &err) == OIR_OK, "%s", err.message)) {
        int ok = 1;
        for (int y = 0; y < 23; y++)
            for (int x = 0; x < 37; x++)
                ok &= m.data[y * 37 + x] == ((x >= 10 && x < 30 && y >= 5 && y < 15) ? 1.0f : 0.0f);
        CHECK(ok, "box 10,5,30,15: x1, y1 exclusive");
        image_free(&m);
    }
    int b2[4] = {-5, -5, 3, 100};
    if (CHECK(mask_from_box(&m, 37, 23, b2, &err) == OIR_OK, "%s", err.message)) {
        int cnt = 0;
        for (int i = 0; i < 37 * 23; i++) cnt += m.data[i] == 1.0f;
        CHECK(cnt == 3 * 23 && m.data[0] == 1.0f && m.data[22 * 37 + 2] == 1.0f, "clamped box: %d", cnt);
        image_free(&m);
    }
    static const int bad_boxes[][4] = {{10, 5, 5, 15}, {3, 3, 3, 9}, {50, 50, 60, 60}, {-9, 0, 0, 5}};
    for (int i = 0; i < 4; i++) {
        int rc = mask_from_box(&m, 37, 23, bad_boxes[i], &err);
        CHECK(rc == OIR_E_ARG && m.data == NULL, "box %d,%d,%d,%d refused: %s", bad_boxes[i][0],
              bad_boxes[i][1], bad_boxes[i][2], bad_boxes[i][3], err.message);
    }

    /* Grids: torch nearest + > 0.5 on a soft mask. */
    size_t n = 0;
    float *soft = th_fixture_f32(REF, "grid_in", &n, NULL);
    if (soft && CHECK(n == 37 * 23, "grid_in size")) {
        image s = {.width = 37, .height = 23, .channels = 1, .data = soft};
        static const int gs[][2] = {{14, 14}, {8, 5}, {64, 64}, {74, 46}, {37, 23}, {3, 40}};
        for (int i = 0; i < 6; i++) {
            char name[32], what[64];
            snprintf(name, sizeof name, "grid_%dx%d", gs[i][0], gs[i][1]);
            snprintf(what, sizeof what, "mask_resize_nearest -> %dx%d", gs[i][0], gs[i][1]);
            if (CHECK(mask_resize_nearest(&m, &s, gs[i][0], gs[i][1], &err) == OIR_OK, "%s", err.message)) {
                cmp_mask(what, &m, ref_u8(name));
                image_free(&m);
            }
        }
    }
    free(soft);
}

/* ------------------------------------------------------------ bad input */

static void expect_fail(const char *label, const char *path, int code, const char *needle) {
    image img;
    oir_error err = {0};
    int rc = image_load(&img, path, &err);
    int ok = CHECK(rc != OIR_OK && img.data == NULL, "%s: should fail", label);
    ok &= CHECK(code == 0 || rc == code, "%s: status %d, expected %d (%s)", label, rc, code, err.message);
    ok &= CHECK(strstr(err.message, path) != NULL, "%s: message should name %s: %s", label, path,
                err.message);
    ok &= CHECK(!needle || strstr(err.message, needle), "%s: message should say '%s': %s", label,
                needle, err.message);
    if (ok) printf("  ok   reject %-18s -> %s\n", label, err.message);
    /* Same through the mask and square loaders. */
    rc = mask_load(&img, path, &err);
    CHECK(rc != OIR_OK && strstr(err.message, path), "%s via mask_load: %s", label, err.message);
    rc = image_load_square(&img, path, 16, &err);
    CHECK(rc != OIR_OK && strstr(err.message, path), "%s via load_square: %s", label, err.message);
}

static void test_bad_input(void) {
    expect_fail("missing file", fx("no_such_image.png"), OIR_E_IO, "cannot open");
    expect_fail("directory", tmpdir, OIR_E_IO, "not a regular file");
    expect_fail("empty file", fx("empty.png"), OIR_E_FORMAT, "empty");
    expect_fail("truncated PNG", fx("truncated.png"), OIR_E_FORMAT, "corrupt PNG");
    expect_fail("truncated JPEG", fx("truncated.jpg"), OIR_E_FORMAT, "corrupt JPEG");
    expect_fail("PNG sig + garbage", fx("garbage_sig.png"), OIR_E_FORMAT, "corrupt PNG");
    expect_fail("PNG CRC error", fx("bad_crc.png"), OIR_E_FORMAT, "corrupt PNG");
    expect_fail("bad Huffman table", fx("bad_huffman.jpg"), OIR_E_FORMAT, "corrupt JPEG");
    expect_fail("huge PNG side", fx("huge_side.png"), OIR_E_UNSUPPORTED, "100000x100000");
    expect_fail("huge PNG Mpixels", fx("huge_mpix.png"), OIR_E_UNSUPPORTED, "16384x16384");
    expect_fail("huge JPEG", fx("huge.jpg"), OIR_E_UNSUPPORTED, "60000x60000");
    expect_fail("text file", fx("not_image.png"), OIR_E_FORMAT, "not a PNG or JPEG");
    expect_fail("GIF", fx("image.gif"), OIR_E_UNSUPPORTED, "GIF");
}

/* ------------------------------------------------ hostile files, made here */

static size_t read_bytes(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!CHECK(f != NULL, "cannot read %s", path)) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void write_bytes(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!CHECK(f != NULL, "cannot write %s", path)) return;
    fwrite(b, 1, n, f);
    fclose(f);
}

/* Offset of the first JPEG marker 0xFF m in the header segments, or 0. */
static size_t jpeg_marker(const uint8_t *b, size_t n, uint8_t m) {
    size_t i = 2;
    while (i + 4 <= n && b[i] == 0xff) {
        if (b[i + 1] == m) return i;
        i += 2 + ((size_t)b[i + 2] << 8 | b[i + 3]);
    }
    return 0;
}

/* Sets the size a JPEG's SOF segment declares. */
static void jpeg_set_size(uint8_t *b, size_t n, uint8_t sof, int w, int h) {
    size_t at = jpeg_marker(b, n, sof);
    if (!CHECK(at, "no SOF%02x marker", sof)) return;
    b[at + 5] = (uint8_t)(h >> 8), b[at + 6] = (uint8_t)h;
    b[at + 7] = (uint8_t)(w >> 8), b[at + 8] = (uint8_t)w;
}

/* Peak RSS growth (MiB, at most 255) of a child process that loads path;
 * -1 if the child died. Measured in the child: its peak starts at the RSS
 * it inherits. */
static long load_rss_growth_mib(const char *path) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rusage before, after;
        getrusage(RUSAGE_SELF, &before);
        image img;
        oir_error err = {0};
        if (image_load(&img, path, &err) == OIR_OK) image_free(&img);
        getrusage(RUSAGE_SELF, &after);
        long mib = (after.ru_maxrss - before.ru_maxrss) / 1024;
        _exit(mib > 255 ? 255 : mib < 0 ? 0 : (int)mib);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

static uint32_t crc32_bytes(const uint8_t *b, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= b[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return ~c;
}

static void test_hostile_files(void) {
    static uint8_t b[8192], m[8192];
    size_t n = read_bytes(fx("rgb_37x23.jpg"), b, sizeof b);
    size_t sos = jpeg_marker(b, n, 0xda);
    if (!CHECK(n > 100 && sos, "rgb_37x23.jpg: SOS found")) return;
    /* 1. Entropy data cut in half but the file still ends in EOI: libjpeg
     * warns "premature end of data segment" and fills the rest with grey. */
    size_t data = sos + 2 + ((size_t)b[sos + 2] << 8 | b[sos + 3]);
    size_t cut = data + (n - 2 - data) / 2;
    memcpy(m, b, cut);
    m[cut] = 0xff, m[cut + 1] = 0xd9;
    const char *p = tmp_path("cut_with_eoi.jpg");
    write_bytes(p, m, cut + 2);
    expect_fail("JPEG data cut, EOI kept", p, OIR_E_FORMAT, "corrupt JPEG");
    /* 2. A 1.4 kB baseline JPEG declaring 4096x4096: the scans cannot hold one
     * Huffman code per block; refused from the header alone. */
    memcpy(m, b, n);
    jpeg_set_size(m, n, 0xc0, 4096, 4096);
    p = tmp_path("declares_4096.jpg");
    write_bytes(p, m, n);
    expect_fail("JPEG size vs file size", p, OIR_E_FORMAT, "declares 4096x4096");
    /* 3. The same for a progressive JPEG of 8192x8192 (libjpeg would zero a
     * whole-image coefficient buffer of ~400 MB before finding the damage). */
    size_t np = read_bytes(fx("prog_37x23.jpg"), m, sizeof m);
    jpeg_set_size(m, np, 0xc2, 8192, 8192);
    p = tmp_path("declares_8192_prog.jpg");
    write_bytes(p, m, np);
    expect_fail("progressive JPEG size vs file", p, OIR_E_FORMAT, "declares 8192x8192");
    long grow = load_rss_growth_mib(p);
    CHECK(grow >= 0 && grow < 64, "progressive 8192x8192 from %zu bytes: RSS grew %ld MiB", np, grow);
    printf("  ok   progressive JPEG declaring 8192x8192: RSS grew %ld MiB\n", grow);
    /* 4. A PNG declaring 8000x8000 with 37x23's IDAT: deflate expands at most
     * ~1032:1, so the file cannot hold the rows; refused before allocating. */
    n = read_bytes(fx("rgb_37x23.png"), b, sizeof b);
    if (!CHECK(n > 33 && !memcmp(b + 12, "IHDR", 4), "rgb_37x23.png: IHDR first")) return;
    for (int i = 0; i < 2; i++) {
        b[16 + 4 * i] = 0, b[17 + 4 * i] = 0, b[18 + 4 * i] = 8000 >> 8, b[19 + 4 * i] = 8000 & 0xff;
    }
    uint32_t crc = crc32_bytes(b + 12, 17);
    b[29] = (uint8_t)(crc >> 24), b[30] = (uint8_t)(crc >> 16), b[31] = (uint8_t)(crc >> 8), b[32] = (uint8_t)crc;
    p = tmp_path("declares_8000.png");
    write_bytes(p, b, n);
    expect_fail("PNG size vs file size", p, OIR_E_FORMAT, "declares 8000x8000");
}

/* Every truncation of a PNG and of two JPEGs fails cleanly; random bit flips
 * never crash (status either way). Run under ASan by `make asan-test`. */
static void fuzz_file(const char *src, int flips) {
    FILE *f = fopen(src, "rb");
    if (!CHECK(f != NULL, "fuzz source %s", src)) return;
    static uint8_t buf[8192], mut[8192];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const char *p = tmp_path("fuzz.bin");
    int fails = 0, truncs = 0, crashes = 0;
    for (size_t cut = 0; cut < len; cut++) {
        unlink(p); /* re-creating is much cheaper than truncating on some file systems */
        FILE *o = fopen(p, "wb");
        fwrite(buf, 1, cut, o);
        fclose(o);
        image img;
        oir_error err = {0};
        int rc = image_load(&img, p, &err);
        truncs++;
        if (rc == OIR_OK) {
            fails++;
            image_free(&img);
        } else if (!strstr(err.message, p)) {
            crashes++;
        }
    }
    CHECK(fails == 0 && crashes == 0, "%s: %d of %d truncations decoded, %d without the file name",
          src, fails, truncs, crashes);
    uint32_t seed = 12345;
    int ok_count = 0;
    for (int it = 0; it < flips; it++) {
        memcpy(mut, buf, len);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1664525u + 1013904223u;
            size_t pos = (seed >> 8) % len;
            mut[pos] ^= (uint8_t)(1u << ((seed >> 3) & 7));
        }
        unlink(p);
        FILE *o = fopen(p, "wb");
        fwrite(mut, 1, len, o);
        fclose(o);
        image img;
        oir_error err = {0};
        if (image_load(&img, p, &err) == OIR_OK) {
            ok_count++;
            image_free(&img);
        } else if (!strstr(err.message, p)) {
            crashes++;
        }
    }
    CHECK(crashes == 0, "%s: errors without the file name", src);
    printf("  ok   fuzz %-30s %d truncations rejected, %d bit-flip files, %d still decoded\n",
           strrchr(src, '/') + 1, truncs, flips, ok_count);
    unlink(p);
}

static void cleanup_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(tmp_path(e->d_name));
    closedir(d);
    rmdir(tmpdir);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/oir_test_image_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    REF = th_open_fixture("images/resize_ref.safetensors");
    if (REF) {
        const char *pv = st_metadata(REF, "pillow");
        printf("  references from Pillow %s\n", pv ? pv : "?");
    }
    test_decode();
    test_center_crop_resize();
    test_plain_resize();
    test_tensors();
    test_png_write();
    test_masks();
    test_bad_input();
    test_hostile_files();
    fuzz_file(fx("rgb_37x23.png"), 300);
    fuzz_file(fx("rgb_37x23.jpg"), 300);
    fuzz_file(fx("prog_37x23.jpg"), 300);
    st_close(REF);
    cleanup_tmpdir();
    return th_summary();
}
