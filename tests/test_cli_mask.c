/* Automatic masks from the command line (issue 13) on the shipped tiny model:
 * `oir mask`, `oir edit --mask auto` / a pair without --mask, the YAML cases
 * without masks, report.json, the sheets, and the bad cases. */
#include <cjson/cJSON.h>

#include "cli_runner.h"
#include "io/image.h"

static char demo[1024], demo_mask1[1024];
static const char *SOURCE = "a red circle on the left and a blue triangle on the right on a gray background";

static cJSON *read_report(const char *dir) {
    static char buf[1 << 20];
    char p[600];
    snprintf(p, sizeof p, "%s/report.json", dir);
    cr_read(p, buf, sizeof buf);
    return cJSON_Parse(buf);
}

static int same_mask(const char *a, const char *b) {
    image x = {0}, y = {0};
    oir_error err = {0};
    int ok = mask_load(&x, a, &err) == OIR_OK && mask_load(&y, b, &err) == OIR_OK && x.width == y.width &&
             x.height == y.height;
    for (size_t i = 0; ok && i < (size_t)x.width * x.height; i++) ok = (x.data[i] > 0.5f) == (y.data[i] > 0.5f);
    image_free(&x);
    image_free(&y);
    return ok;
}

static double area_of(const char *path) {
    image m = {0};
    oir_error err = {0};
    if (mask_load(&m, path, &err)) return -1;
    double in = 0;
    for (size_t i = 0; i < (size_t)m.width * m.height; i++) in += m.data[i] > 0.5f;
    in /= (double)m.width * m.height;
    image_free(&m);
    return in;
}

static int png_height(const char *path) {
    image img = {0};
    oir_error err = {0};
    int h = image_load(&img, path, &err) == OIR_OK ? img.height : -1;
    image_free(&img);
    return h;
}

static void test_mask_command(void) {
    const char *out = cr_path("m1.png");
    int rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--out", out,
                    "--threads", "1", NULL);
    CHECK(rc == 0 && strstr(cr_out, "method noise") && strstr(cr_out, "20 UNet rows"), "oir mask: exit %d: %s %s", rc,
          cr_out, cr_err);
    double a = area_of(out);
    CHECK(a > 0.01 && a < 0.3, "oir mask: a mask of the object's size (area %.3f)", a);
    /* deterministic; the seed and the flags matter */
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle = green square", "--out",
                cr_path("m1b.png"), "--quiet", NULL);
    CHECK(rc == 0 && same_mask(out, cr_path("m1b.png")) && !cr_out[0], "oir mask: same inputs, same mask; --quiet");
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--out",
                cr_path("m1d.png"), "--dilate", "6", "--quiet", NULL);
    CHECK(rc == 0 && area_of(cr_path("m1d.png")) > a, "oir mask --dilate 6: larger (%.3f > %.3f)",
          area_of(cr_path("m1d.png")), a);
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--out",
                cr_path("m1s.png"), "--seed", "7", "--threshold", "0.3", "--quiet", NULL);
    CHECK(rc == 0 && !same_mask(out, cr_path("m1s.png")), "oir mask --seed 7 --threshold 0.3: another mask");
    /* the fallback: nothing above threshold 1, a warning, never an empty mask */
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--out",
                cr_path("m1f.png"), "--threshold", "1", NULL);
    CHECK(rc == 0 && strstr(cr_err, "warning") && strstr(cr_err, "lowered") && area_of(cr_path("m1f.png")) > 0,
          "oir mask --threshold 1: fallback with a warning: %s", cr_err);
    /* the attention methods: available, or a clear error */
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--out",
                cr_path("m1a.png"), "--method", "attention", NULL);
    CHECK(rc == 0 || (rc == 1 && strstr(cr_err, "not available in this build")), "--method attention: %d %s", rc, cr_err);
    /* bad input */
    rc = cr_run("mask", "--image", cr_path("missing.png"), "--prompt", SOURCE, "--pair", "red circle->green square",
                "--out", cr_path("x.png"), NULL);
    cr_expect_error("oir mask: missing image", rc, "mask", "missing.png");
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "green dog->cat", "--out", cr_path("x.png"), NULL);
    cr_expect_error("oir mask: phrase not in the prompt", rc, "mask", "green dog");
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->cat", "--out", cr_path("x.png"),
                "--method", "magic", NULL);
    cr_expect_error("oir mask: bad --method", rc, "mask", "--method");
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->cat", "--out", cr_path("x.png"),
                "--threshold", "1.5", NULL);
    cr_expect_error("oir mask: bad --threshold", rc, "mask", "--threshold");
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->cat", "--out", cr_path("x.png"),
                "--dilate", "-1", NULL);
    cr_expect_error("oir mask: bad --dilate", rc, "mask", "--dilate");
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->cat", "--out", cr_path("x.png"),
                "--dilate", "65", NULL);
    cr_expect_error("oir mask: --dilate 65", rc, "mask", "--dilate");
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle", "--out", cr_path("x.png"), NULL);
    cr_expect_error("oir mask: malformed pair", rc, "mask", "FROM->TO");
    rc = cr_run("mask", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->cat", NULL);
    cr_expect_error("oir mask: no --out", rc, "mask", "--out");
    /* never over its input */
    char copy[600];
    snprintf(copy, sizeof copy, "%s/photo.png", cr_tmp);
    image img = {0};
    oir_error err = {0};
    if (CHECK(image_load(&img, demo, &err) == OIR_OK && image_save_png(&img, copy, &err) == OIR_OK, "%s", err.message)) {
        FILE *fp = fopen(copy, "rb");
        char before[8192];
        size_t nb = fp ? fread(before, 1, sizeof before, fp) : 0;
        if (fp) fclose(fp);
        rc = cr_run("mask", "--image", copy, "--prompt", SOURCE, "--pair", "red circle->cat", "--out", copy, NULL);
        char after[8192];
        fp = fopen(copy, "rb");
        size_t na = fp ? fread(after, 1, sizeof after, fp) : 0;
        if (fp) fclose(fp);
        CHECK(rc != 0 && nb == na && !memcmp(before, after, nb), "oir mask --out = --image: refused (%d), input intact: %s",
              rc, cr_err);
    }
    image_free(&img);
    CHECK(cr_run("mask", "--help", NULL) == 0 && strstr(cr_out, "--threshold") && strstr(cr_out, "fallback"),
          "oir mask --help");
    CHECK(cr_run("--help", NULL) == 0 && strstr(cr_out, "mask "), "oir --help lists mask");
}

static void test_edit_auto(void) {
    /* pair 1 inferred (--mask auto), pair 2 given */
    const char *out = cr_path("e_auto");
    int rc = cr_run("edit", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--mask", "auto",
                    "--pair", "blue triangle->yellow star", "--mask", demo_mask1, "--steps", "3", "--threads", "1",
                    "--quiet", "--out", out, NULL);
    CHECK(rc == 0, "edit --mask auto: exit %d: %s", rc, cr_err);
    cJSON *r = read_report(out);
    cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "pairs"), 0), *p1 = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "pairs"), 1);
    cJSON *mi = cJSON_GetObjectItem(p0, "mask_inferred");
    cJSON *m0 = cJSON_GetObjectItem(p0, "mask");
    CHECK(cJSON_IsString(m0) && !strcmp(m0->valuestring, "auto") && cJSON_IsObject(mi) &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(mi, "method")), "noise") &&
              cJSON_GetObjectItem(mi, "unet_rows")->valuedouble == 20 && cJSON_GetObjectItem(mi, "area")->valuedouble > 0 &&
              cJSON_IsNumber(cJSON_GetObjectItem(mi, "threshold")) && cJSON_IsString(cJSON_GetObjectItem(mi, "warning")),
          "report.json: pair 1's mask inferred, with method, threshold, area and cost");
    CHECK(!cJSON_GetObjectItem(p1, "mask_inferred"), "report.json: pair 2's mask was given");
    CHECK(cJSON_GetObjectItem(r, "mask_unet_rows")->valuedouble == 20 &&
              cJSON_IsNumber(cJSON_GetObjectItem(r, "mask_overlap_cells")) &&
              cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "seconds"), "mask")),
          "report.json: mask rows, overlap and seconds");
    cJSON_Delete(r);
    /* the same mask as oir mask; the sheet shows it over the input (a band on top) */
    char p[600], q[600];
    snprintf(p, sizeof p, "%s/pair1_mask.png", out);
    CHECK(same_mask(p, cr_path("m1.png")), "pair1_mask.png = oir mask's");
    snprintf(p, sizeof p, "%s/pair1_sheet.png", out);
    snprintf(q, sizeof q, "%s/pair2_sheet.png", out);
    CHECK(png_height(p) > png_height(q) && png_height(q) > 0, "pair 1's sheet has the mask band (%d > %d px)",
          png_height(p), png_height(q));
    /* no --mask at all: every mask inferred; the plan counts them; search too */
    out = cr_path("s_auto");
    rc = cr_run("search", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--steps", "3",
                "--threads", "1", "--out", out, NULL);
    r = read_report(out);
    cJSON *plan = cJSON_GetObjectItem(r, "plan");
    CHECK(rc == 0 && cJSON_GetObjectItem(r, "mask_unet_rows")->valuedouble == 20 &&
              cJSON_GetObjectItem(plan, "unet_rows")->valuedouble == cJSON_GetObjectItem(r, "unet_rows_total")->valuedouble,
          "search without --mask: exit %d, plan = run (%g, %g rows)", rc,
          cJSON_GetNumberValue(cJSON_GetObjectItem(plan, "unet_rows")),
          cJSON_GetNumberValue(cJSON_GetObjectItem(r, "unet_rows_total")));
    cJSON_Delete(r);
    rc = cr_run("search", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--steps", "3",
                "--plan", NULL);
    CHECK(rc == 0 && strstr(cr_out, "plan:"), "--plan without masks: %s", cr_out);
    /* the fallback inside edit: a warning on stderr and in report.json */
    out = cr_path("e_fb");
    rc = cr_run("search", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--steps", "2",
                "--mask-threshold", "1", "--threads", "1", "--quiet", "--out", out, NULL);
    r = read_report(out);
    char *js = r ? cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "warnings")) : NULL;
    CHECK(rc == 0 && strstr(cr_err, "inferred mask") && js && strstr(js, "lowered"),
          "--mask-threshold 1: warned (%s / %s)", cr_err, js ? js : "");
    free(js);
    cJSON_Delete(r);
    /* bad flags and bad cases */
    rc = cr_run("edit", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--mask-method",
                "magic", "--out", cr_path("x"), NULL);
    cr_expect_error("edit: bad --mask-method", rc, "edit", "--mask-method");
    rc = cr_run("edit", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--mask-threshold",
                "2", "--out", cr_path("x"), NULL);
    cr_expect_error("edit: bad --mask-threshold", rc, "edit", "--mask-threshold");
    rc = cr_run("edit", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--mask-dilate",
                "-2", "--out", cr_path("x"), NULL);
    cr_expect_error("edit: bad --mask-dilate", rc, "edit", "--mask-dilate");
    rc = cr_run("edit", "--image", demo, "--prompt", SOURCE, "--pair", "green dog->cat", "--steps", "2", "--out",
                cr_path("x"), NULL);
    cr_expect_error("edit: phrase not in the prompt, mask inferred", rc, "edit", "green dog");
    rc = cr_run("edit", "--image", demo, "--prompt", SOURCE, "--pair", "red circle->green square", "--pair",
                "blue triangle->yellow star", "--mask", "auto", "--out", cr_path("x"), NULL);
    cr_expect_error("edit: 2 pairs, 1 mask", rc, "edit", "--mask auto");
}

static void test_yaml_auto(void) {
    FILE *fp = fopen(cr_path("auto.yaml"), "w");
    fprintf(fp,
            "no_masks:\n"
            "  image_path: %s\n"
            "  origin_prompt: \"%s\"\n"
            "  origin_change: ['red circle', 'blue triangle']\n"
            "  prompt_change: ['green square', 'yellow star']\n"
            "  num_ddim_steps: 3\n"
            "one_auto:\n"
            "  image_path: %s\n"
            "  origin_prompt: \"%s\"\n"
            "  origin_change: ['red circle', 'blue triangle']\n"
            "  prompt_change: ['green square', 'yellow star']\n"
            "  prompt_change_mask: [auto, '%s']\n"
            "  num_ddim_steps: 3\n",
            demo, SOURCE, demo, SOURCE, demo_mask1);
    fclose(fp);
    const char *out = cr_path("y_auto");
    int rc = cr_run("edit", "--config", cr_path("auto.yaml"), "--threads", "1", "--quiet", "--out", out, NULL);
    CHECK(rc == 0, "YAML without masks / with auto: exit %d: %s", rc, cr_err);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/no_masks", out);
    cJSON *r = read_report(dir);
    CHECK(r && cJSON_GetObjectItem(r, "mask_unet_rows")->valuedouble == 40, "no prompt_change_mask: both inferred");
    cJSON_Delete(r);
    snprintf(dir, sizeof dir, "%s/one_auto", out);
    r = read_report(dir);
    cJSON *pairs = cJSON_GetObjectItem(r, "pairs");
    CHECK(r && cJSON_GetObjectItem(r, "mask_unet_rows")->valuedouble == 20 &&
              cJSON_GetObjectItem(cJSON_GetArrayItem(pairs, 0), "mask_inferred") &&
              !cJSON_GetObjectItem(cJSON_GetArrayItem(pairs, 1), "mask_inferred"),
          "prompt_change_mask [auto, file]: the first inferred");
    cJSON_Delete(r);
}

int main(int argc, char **argv) {
    (void)argc;
    if (cr_init(argv[0])) {
        CHECK(0, "cannot set up the CLI runner");
        return th_summary();
    }
    snprintf(demo, sizeof demo, "%s/../examples/shapes/demo.png", oir_models_dir());
    snprintf(demo_mask1, sizeof demo_mask1, "%s/../examples/shapes/demo_mask1.png", oir_models_dir());
    test_mask_command();
    test_edit_auto();
    test_yaml_auto();
    cr_cleanup();
    return th_summary();
}
