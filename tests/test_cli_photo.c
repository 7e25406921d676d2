/* Photos as they are (oir edit / search): a 96x64 photo on the shipped tiny
 * model end to end — the working size and transform in report.json, masks
 * and boxes in the photo's pixels mapped to the working size as Pillow's
 * NEAREST does, edited.png the whole photo with every pixel outside the
 * masks (or outside the region the model saw) untouched and the inside the
 * working result put back in place — then --size and the errors of a wrong
 * mask, a box outside the photo and a bad --size; and a square photo on the
 * tiny random pipeline (the default transform of a square is the identity:
 * input.png is the photo). */
#include <cjson/cJSON.h>

#include "cli_runner.h"
#include "io/image.h"

#define PW 96
#define PH 64

static char pipe_model[1024], pipe_clip[1024];

static int in_disk(int x, int y) { return (x - 28) * (x - 28) + (y - 32) * (y - 32) <= 12 * 12; }

/* photo: a vertical grey gradient, a red disk left, a blue square right;
 * mask_disk: the disk plus a strip in columns 0..1 (outside the region the
 * default working size shows); mask_square: the photo's size (wrong for the
 * pipeline's 16x16 below); mask_small: 64x64 (wrong for the photo);
 * mask_edge: only columns 0..3 (nothing inside the region). */
static void write_inputs(void) {
    oir_error err = {0};
    image img = {0}, md = {0}, small = {0}, edge = {0}, sq = {0}, sqm = {0};
    image_alloc(&img, PW, PH, 3, &err);
    image_alloc(&md, PW, PH, 1, &err);
    image_alloc(&small, 64, 64, 1, &err);
    image_alloc(&edge, PW, PH, 1, &err);
    for (int y = 0; y < PH; y++)
        for (int x = 0; x < PW; x++) {
            float *p = img.data + ((size_t)y * PW + x) * 3, g = (float)(150 - y / 2) / 255.0f;
            int disk = in_disk(x, y), square = x >= 60 && x < 80 && y >= 22 && y < 42;
            p[0] = disk ? 220 / 255.0f : square ? 30 / 255.0f : g;
            p[1] = disk ? 30 / 255.0f : square ? 40 / 255.0f : g;
            p[2] = disk ? 30 / 255.0f : square ? 210 / 255.0f : g;
            md.data[y * PW + x] = (float)(in_disk(x, y) || x < 2);
            edge.data[y * PW + x] = (float)(x < 4);
        }
    for (int i = 0; i < 64 * 64; i++) small.data[i] = (float)(i % 64 > 20 && i % 64 < 40);
    image_save_png(&img, cr_path("photo.png"), &err);
    image_save_png(&md, cr_path("disk.png"), &err);
    image_save_png(&small, cr_path("small.png"), &err);
    image_save_png(&edge, cr_path("edge.png"), &err);
    /* 16x16 for the tiny random pipeline */
    image_alloc(&sq, 16, 16, 3, &err);
    image_alloc(&sqm, 16, 16, 1, &err);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            int left = x >= 2 && x < 7 && y >= 5 && y < 11;
            float *p = sq.data + (y * 16 + x) * 3;
            p[0] = left ? 0.9f : 0.5f, p[1] = 0.5f, p[2] = (float)(100 + 5 * y) / 255.0f;
            sqm.data[y * 16 + x] = (float)left;
        }
    image_save_png(&sq, cr_path("sq.png"), &err);
    image_save_png(&sqm, cr_path("sq_mask.png"), &err);
    image_free(&img), image_free(&md), image_free(&small), image_free(&edge), image_free(&sq), image_free(&sqm);
}

static cJSON *read_report(const char *dir) {
    static char buf[1 << 20];
    char p[600];
    snprintf(p, sizeof p, "%s/report.json", dir);
    cr_read(p, buf, sizeof buf);
    return cJSON_Parse(buf);
}

static int jint(const cJSON *o, const char *a, const char *b) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, a), b);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static int load(image *img, const char *dir, const char *name) {
    char p[600];
    oir_error err = {0};
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return CHECK(image_load(img, p, &err) == OIR_OK, "%s: %s", name, err.message);
}

/* Pillow NEAREST of the crop (cx, cy, cw, ch) of mask m (photo size) to
 * w x h, written out independently: source = int(a / 2 + i * a) with
 * a = crop / out accumulated in double, as ImagingScaleAffine does. */
static int nearest_matches(const image *m, const image *got, int cx, int cy, int cw, int ch, int w, int h) {
    if (got->width != w || got->height != h) return 0;
    double ax = (double)cw / w, ay = (double)ch / h, yo = ay / 2;
    for (int j = 0; j < h; j++, yo += ay) {
        double xo = ax / 2;
        for (int i = 0; i < w; i++, xo += ax) {
            float want = m->data[(size_t)(cy + (int)yo) * m->width + cx + (int)xo] > 0.5f;
            if ((got->data[(size_t)j * w + i] > 0.5f) != (want > 0.5f)) return 0;
        }
    }
    return 1;
}

static void test_photo_edit(void) {
    const char *out = cr_path("out");
    int rc = cr_run("edit", "--image", cr_path("photo.png"), "--prompt",
                    "a red circle on the left and a blue square on the right on a gray background", "--pair",
                    "red circle->green circle", "--mask", cr_path("disk.png"), "--pair", "blue square->yellow square",
                    "--mask", "56,18,84,46", "--steps", "3", "--quiet", "--threads", "2", "--out", out, NULL);
    if (!CHECK(rc == 0, "96x64 photo, tiny model: exit %d %s", rc, cr_err)) return;
    /* default working size: the native 64 as the longer side, 64 x 48 (the
     * multiple is 16); the region with aspect 4:3 is 85x64 at x = 5 */
    cJSON *r = read_report(out), *geo = cJSON_GetObjectItem(r, "geometry");
    CHECK(jint(geo, "photo", "width") == PW && jint(geo, "photo", "height") == PH, "report: photo 96x64");
    CHECK(jint(geo, "working", "width") == 64 && jint(geo, "working", "height") == 48, "report: working 64x48, got %dx%d",
          jint(geo, "working", "width"), jint(geo, "working", "height"));
    CHECK(jint(geo, "crop", "x") == 5 && jint(geo, "crop", "y") == 0 && jint(geo, "crop", "width") == 85 &&
              jint(geo, "crop", "height") == 64,
          "report: crop 85x64 at (5, 0)");
    int feather = cJSON_GetObjectItem(geo, "feather_px") ? cJSON_GetObjectItem(geo, "feather_px")->valueint : -1;
    CHECK(feather == 3, "feather: two working pixels = 3 photo pixels, got %d", feather);
    const cJSON *w = cJSON_GetObjectItem(r, "warnings");
    int outside_warned = 0;
    for (int i = 0; i < cJSON_GetArraySize(w); i++)
        outside_warned |= strstr(cJSON_GetArrayItem(w, i)->valuestring, "128 pixels of mask") != NULL;
    CHECK(outside_warned, "the mask's strip outside the region (2 x 64 pixels) is reported");
    cJSON_Delete(r);

    image photo = {0}, edited = {0}, working = {0}, input = {0}, disk = {0}, up = {0};
    oir_error err = {0};
    if (!load(&photo, cr_tmp, "photo.png") || !load(&edited, out, "edited.png") ||
        !load(&working, out, "edited_working.png") || !load(&input, out, "input.png"))
        goto cleanup;
    mask_load(&disk, cr_path("disk.png"), &err);
    CHECK(edited.width == PW && edited.height == PH, "edited.png is the photo's size: %dx%d", edited.width, edited.height);
    CHECK(working.width == 64 && working.height == 48 && input.width == 64 && input.height == 48,
          "edited_working.png and input.png are 64x48");
    /* masks at the working size: the box and the file, through the photo's transform */
    image box = {0};
    int b[4] = {56, 18, 84, 46};
    mask_from_box(&box, PW, PH, b, &err);
    image m1b = {0}, m2b = {0};
    mask_load(&m1b, cr_path("out/pair1_mask.png"), &err);
    mask_load(&m2b, cr_path("out/pair2_mask.png"), &err);
    CHECK(nearest_matches(&disk, &m1b, 5, 0, 85, 64, 64, 48), "pair 1: the mask file, cropped and resized nearest");
    CHECK(nearest_matches(&box, &m2b, 5, 0, 85, 64, 64, 48),
          "pair 2: box 56,18,84,46 in photo pixels selects the same cells");
    /* outside the masks (and the mask strip outside the region): the photo's bytes */
    long changed_outside = 0, changed_inside = 0, deep = 0, deep_wrong = 0;
    if (image_resize(&up, &working, 85, 64, &err) == OIR_OK) {
        for (int y = 0; y < PH; y++)
            for (int x = 0; x < PW; x++) {
                size_t j = (size_t)y * PW + x;
                int inside = (disk.data[j] > 0.5f || box.data[j] > 0.5f) && x >= 5 && x < 90;
                int same = !memcmp(edited.data + j * 3, photo.data + j * 3, 3 * sizeof(float));
                if (!inside) changed_outside += !same;
                else changed_inside += !same;
                /* at least feather + 1 pixels inside the box: the working result itself */
                if (x >= 56 + feather + 1 && x < 84 - feather - 1 && y >= 18 + feather + 1 && y < 46 - feather - 1) {
                    deep++;
                    deep_wrong += memcmp(edited.data + j * 3, up.data + ((size_t)y * 85 + x - 5) * 3, 3 * sizeof(float)) != 0;
                }
            }
    }
    CHECK(changed_outside == 0, "every pixel outside the masks is the photo's: %ld differ", changed_outside);
    CHECK(changed_inside > 100, "the edit is composited inside the masks: %ld pixels changed", changed_inside);
    CHECK(deep > 0 && deep_wrong == 0, "deep inside the box: the working result resized to the region, in place (%ld of %ld differ)",
          deep_wrong, deep);
    image_free(&box), image_free(&m1b), image_free(&m2b);
cleanup:
    image_free(&photo), image_free(&edited), image_free(&working), image_free(&input);
    image_free(&disk), image_free(&up);
}

/* --size N (the longer side) and WxH; the photo at its own size is the
 * identity transform */
static void test_size_option(void) {
    const char *out = cr_path("out96");
    int rc = cr_run("search", "--image", cr_path("photo.png"), "--prompt", "a red circle on the left", "--pair",
                    "red circle->green circle", "--mask", "14,18,43,47", "--size", "96", "--steps", "2", "--quiet",
                    "--threads", "2", "--out", out, NULL);
    if (CHECK(rc == 0, "--size 96: exit %d %s", rc, cr_err)) {
        cJSON *r = read_report(out), *geo = cJSON_GetObjectItem(r, "geometry");
        CHECK(jint(geo, "working", "width") == 96 && jint(geo, "working", "height") == 64 &&
                  jint(geo, "crop", "width") == 96 && jint(geo, "crop", "x") == 0,
              "--size 96 on a 96x64 photo: working 96x64, no crop");
        cJSON_Delete(r);
        image photo = {0}, input = {0};
        if (load(&photo, cr_tmp, "photo.png") && load(&input, out, "input.png"))
            CHECK(input.width == PW && input.height == PH &&
                      !memcmp(input.data, photo.data, (size_t)PW * PH * 3 * sizeof(float)),
                  "at the photo's own size input.png is the photo");
        image_free(&photo), image_free(&input);
    }
    out = cr_path("out32");
    rc = cr_run("search", "--image", cr_path("photo.png"), "--prompt", "a red circle on the left", "--pair",
                "red circle->green circle", "--mask", cr_path("disk.png"), "--size", "32x32", "--steps", "2", "--quiet",
                "--threads", "2", "--out", out, NULL);
    if (CHECK(rc == 0, "--size 32x32: exit %d %s", rc, cr_err)) {
        cJSON *r = read_report(out), *geo = cJSON_GetObjectItem(r, "geometry");
        CHECK(jint(geo, "working", "width") == 32 && jint(geo, "working", "height") == 32 &&
                  jint(geo, "crop", "width") == 64 && jint(geo, "crop", "x") == 16,
              "--size 32x32: the authors' centre square, 64x64 at x = 16");
        cJSON_Delete(r);
    }
}

static void test_errors(void) {
    const char *src = "a red circle on the left";
    int rc = cr_run("search", "--image", cr_path("photo.png"), "--prompt", src, "--pair", "red circle->green circle",
                    "--mask", cr_path("small.png"), "--steps", "2", "--out", cr_path("e1"), NULL);
    cr_expect_error("a 64x64 mask for a 96x64 photo", rc, "search", "photo's pixels");
    CHECK(strstr(cr_err, "64x64") && strstr(cr_err, "96x64"), "the message gives both sizes: %s", cr_err);
    rc = cr_run("search", "--image", cr_path("photo.png"), "--prompt", src, "--pair", "red circle->green circle",
                "--mask", "80,10,100,30", "--steps", "2", "--out", cr_path("e2"), NULL);
    cr_expect_error("a box reaching outside the photo", rc, "search", "outside the 96x64 photo");
    rc = cr_run("search", "--image", cr_path("photo.png"), "--prompt", src, "--pair", "red circle->green circle",
                "--mask", cr_path("edge.png"), "--steps", "2", "--out", cr_path("e3"), NULL);
    cr_expect_error("a mask only in the cropped-off strip", rc, "search", "working size");
    const char *bad[] = {"50", "0", "abc", "64x", "x48", "9999", "64x40", "-64"};
    const char *why[] = {"multiple of 16", "--size", "--size", "--size", "--size", "--size", "multiple of 16",
                         "--size"};
    for (int i = 0; i < 8; i++) {
        char out[32];
        snprintf(out, sizeof out, "es%d", i);
        rc = cr_run("search", "--image", cr_path("photo.png"), "--prompt", src, "--pair", "red circle->green circle",
                    "--mask", cr_path("disk.png"), "--size", bad[i], "--steps", "2", "--out", cr_path(out), NULL);
        char what[64];
        snprintf(what, sizeof what, "--size %s", bad[i]);
        cr_expect_error(what, rc, "search", why[i]);
    }
}

/* A square photo at the model's native size: input.png is the photo, and
 * edited.png is the photo with edited_working.png inside the mask. */
static void test_square(void) {
    const char *out = cr_path("sq_out");
    int rc = cr_run("search", "--model", pipe_model, "--clip", pipe_clip, "--image", cr_path("sq.png"), "--prompt",
                    "a photo of a red circle", "--pair", "red circle->blue circle", "--mask", cr_path("sq_mask.png"),
                    "--steps", "3", "--quiet", "--threads", "1", "--out", out, NULL);
    if (!CHECK(rc == 0, "square 16x16: exit %d %s", rc, cr_err)) return;
    image photo = {0}, input = {0}, edited = {0}, working = {0}, m = {0};
    oir_error err = {0};
    if (load(&photo, cr_tmp, "sq.png") && load(&input, out, "input.png") && load(&edited, out, "edited.png") &&
        load(&working, out, "edited_working.png") && mask_load(&m, cr_path("sq_mask.png"), &err) == OIR_OK) {
        CHECK(!memcmp(input.data, photo.data, 16 * 16 * 3 * sizeof(float)), "square at native size: input.png is the photo");
        long out_diff = 0, in_same_as_work = 0, n_in = 0;
        for (int j = 0; j < 16 * 16; j++) {
            if (m.data[j] < 0.5f) out_diff += memcmp(edited.data + j * 3, photo.data + j * 3, 3 * sizeof(float)) != 0;
            else n_in++, in_same_as_work += !memcmp(edited.data + j * 3, working.data + j * 3, 3 * sizeof(float));
        }
        CHECK(out_diff == 0, "outside the mask edited.png is the photo (%ld differ)", out_diff);
        /* the 5x6 box with a 2-pixel feather: its central 1x2 cells are the result itself */
        CHECK(n_in == 30 && in_same_as_work >= 2, "inside: %ld of %ld pixels are the working result", in_same_as_work, n_in);
    }
    image_free(&photo), image_free(&input), image_free(&edited), image_free(&working), image_free(&m);
    /* a non-square working size on the pipeline (multiples of 4), boxes in photo pixels */
    out = cr_path("sq_wide");
    rc = cr_run("search", "--model", pipe_model, "--clip", pipe_clip, "--image", cr_path("sq.png"), "--prompt",
                "a photo of a red circle", "--pair", "red circle->blue circle", "--mask", "2,5,7,11", "--size", "16x8",
                "--steps", "2", "--quiet", "--threads", "1", "--out", out, NULL);
    if (CHECK(rc == 0, "--size 16x8 on a 16x16 photo: exit %d %s", rc, cr_err)) {
        cJSON *r = read_report(out), *geo = cJSON_GetObjectItem(r, "geometry");
        CHECK(jint(geo, "crop", "y") == 4 && jint(geo, "crop", "height") == 8 && jint(geo, "crop", "width") == 16,
              "16x8 of a 16x16 photo: rows 4..11");
        cJSON_Delete(r);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    if (cr_init(argv[0])) {
        CHECK(0, "cannot set up the CLI runner");
        return th_summary();
    }
    snprintf(pipe_model, sizeof pipe_model, "%s", th_fixture_path("sd/tiny-pipe"));
    snprintf(pipe_clip, sizeof pipe_clip, "%s", th_fixture_path("sd/clip-tiny"));
    write_inputs();
    test_photo_edit();
    test_size_option();
    test_errors();
    test_square();
    cr_cleanup();
    return th_summary();
}
