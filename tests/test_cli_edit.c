/* oir search / oir edit from the command line on the tiny random pipeline:
 * outputs and report.json, the authors' YAML, and malformed requests. */
#include <cjson/cJSON.h>

#include "cli_runner.h"
#include "io/image.h"

static char model[1024], clip[1024];

static void write_inputs(void) {
    oir_error err = {0};
    image img = {0}, m1 = {0}, big = {0};
    image_alloc(&img, 16, 16, 3, &err);
    image_alloc(&m1, 16, 16, 1, &err);
    image_alloc(&big, 20, 16, 1, &err);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            float *p = img.data + (y * 16 + x) * 3;
            int left = x >= 2 && x < 7 && y >= 5 && y < 11, right = x >= 9 && x < 14 && y >= 5 && y < 11;
            p[0] = left ? 0.9f : 0.5f;
            p[1] = right ? 0.8f : 0.5f;
            p[2] = 0.5f;
            m1.data[y * 16 + x] = (float)left;
        }
    image_save_png(&img, cr_path("in.png"), &err);
    image_save_png(&m1, cr_path("m1.png"), &err);
    image_save_png(&big, cr_path("m_wrong.png"), &err);
    image_free(&m1);
    image_alloc(&m1, 16, 16, 1, &err); /* all zero */
    image_save_png(&m1, cr_path("m_empty.png"), &err);
    FILE *fp = fopen(cr_path("cases.yaml"), "w");
    fprintf(fp,
            "two_objects:\n"
            "  image_path: in.png\n"
            "  origin_prompt: \"a photo of a red circle and a green square\"\n"
            "  target_prompt: \"a photo of a blue circle and a green star\"\n"
            "  guided_prompt: [[\"a photo of a \", \" and a green square\"], [\"a photo of a red circle and a \", \"\"]]\n"
            "  origin_change: ['red circle', 'green square']\n"
            "  prompt_change: ['blue circle', 'green star']\n"
            "  prompt_change_mask: ['m1.png', 'm1.png']\n"
            "  reassembly_step: 2\n"
            "  reinversion_steps: 2\n");
    fclose(fp);
    image_free(&img);
    image_free(&m1);
    image_free(&big);
}

static cJSON *read_report(const char *dir) {
    static char buf[1 << 20];
    char p[600];
    snprintf(p, sizeof p, "%s/report.json", dir);
    cr_read(p, buf, sizeof buf);
    return cJSON_Parse(buf);
}

static void test_edit_outputs(void) {
    const char *out = cr_path("out_edit");
    int rc = cr_run("edit", "--model", model, "--clip", clip, "--image", cr_path("in.png"), "--prompt",
                    "a photo of a red circle and a green square", "--pair", "red circle->blue circle", "--mask",
                    cr_path("m1.png"), "--pair", "green square->green star", "--mask", "9,5,14,11", "--steps", "6",
                    "--reassembly-step", "2", "--reinversion-steps", "2", "--quiet", "--threads", "1", "--out", out,
                    NULL);
    CHECK(rc == 0, "oir edit exit %d: %s", rc, cr_err);
    const char *files[] = {"edited.png", "input.png", "pair1_sheet.png", "pair2_sheet.png", "pair1_mask.png",
                           "pair2_mask.png", "report.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", out, files[i]);
        CHECK(access(p, F_OK) == 0, "oir edit wrote %s", files[i]);
    }
    cJSON *r = read_report(out);
    CHECK(r != NULL, "report.json parses");
    if (!r) return;
    cJSON *pairs = cJSON_GetObjectItem(r, "pairs");
    CHECK(cJSON_GetArraySize(pairs) == 2, "report has 2 pairs");
    cJSON *p0 = cJSON_GetArrayItem(pairs, 0);
    int k = cJSON_GetObjectItem(p0, "chosen_step") ? cJSON_GetObjectItem(p0, "chosen_step")->valueint : 0;
    CHECK(k >= 1 && k <= 6, "chosen step %d in 1..6", k);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(p0, "total")) == 6, "6 per-step totals");
    cJSON *tgt = cJSON_GetObjectItem(r, "target_prompt");
    CHECK(cJSON_IsString(tgt) && !strcmp(tgt->valuestring, "a photo of a blue circle and a green star"), "target");
    CHECK(cJSON_GetObjectItem(r, "seconds") && cJSON_GetObjectItem(r, "warnings"), "timings and warnings");
    CHECK(strstr(cr_out, "chosen step") != NULL, "summary printed: %s", cr_out);
    cJSON_Delete(r);
    /* search on one pair; the sheet has the candidates */
    out = cr_path("out_search");
    rc = cr_run("search", "--model", model, "--clip", clip, "--image", cr_path("in.png"), "--prompt",
                "a photo of a red circle", "--pair", "red circle->blue circle", "--mask", cr_path("m1.png"), "--steps",
                "5", "--serial", "--save-candidates", "--quiet", "--out", out, NULL);
    CHECK(rc == 0, "oir search exit %d: %s", rc, cr_err);
    char p[600];
    snprintf(p, sizeof p, "%s/pair1_k05.png", out);
    CHECK(access(p, F_OK) == 0, "--save-candidates wrote pair1_k05.png");
    image sheet = {0};
    oir_error err = {0};
    snprintf(p, sizeof p, "%s/pair1_sheet.png", out);
    CHECK(image_load(&sheet, p, &err) == OIR_OK && sheet.width > 5 * 96, "sheet is %dx%d", sheet.width, sheet.height);
    image_free(&sheet);
    /* the authors' YAML */
    out = cr_path("out_yaml");
    rc = cr_run("edit", "--model", model, "--clip", clip, "--config", cr_path("cases.yaml"), "--steps", "5", "--quiet",
                "--out", out, NULL);
    CHECK(rc == 0, "oir edit --config exit %d: %s", rc, cr_err);
    r = read_report(out);
    CHECK(r && cJSON_GetObjectItem(r, "reassembly_step_requested") &&
              cJSON_GetObjectItem(r, "reassembly_step_requested")->valueint == 2, "YAML reassembly_step used");
    cJSON *w = r ? cJSON_GetObjectItem(r, "warnings") : NULL;
    int overlap = 0;
    for (int i = 0; i < cJSON_GetArraySize(w); i++)
        overlap |= strstr(cJSON_GetArrayItem(w, i)->valuestring, "overlap") != NULL;
    CHECK(overlap, "same mask for both pairs: overlap reported in report.json");
    cJSON_Delete(r);
    /* an explicit flag wins over the YAML value */
    out = cr_path("out_yaml_flag");
    rc = cr_run("edit", "--model", model, "--clip", clip, "--config", cr_path("cases.yaml"), "--steps", "5", "--quiet",
                "--reassembly-step", "1", "--out", out, NULL);
    r = read_report(out);
    CHECK(rc == 0 && r && cJSON_GetObjectItem(r, "reassembly_step_requested") &&
              cJSON_GetObjectItem(r, "reassembly_step_requested")->valueint == 1,
          "--reassembly-step overrides the YAML's reassembly_step");
    cJSON_Delete(r);
}

static void test_errors(void) {
    const char *img = cr_path("in.png"), *m1 = cr_path("m1.png");
    const char *src = "a photo of a red circle";
    int rc;
    rc = cr_run("edit", "--model", model, "--clip", clip, "--image", img, "--prompt", src, "--pair", "red circle",
                "--mask", m1, "--out", cr_path("e1"), NULL);
    cr_expect_error("malformed pair", rc, "edit", "FROM->TO");
    rc = cr_run("edit", "--model", model, "--clip", clip, "--image", img, "--prompt", src, "--pair",
                "red circle->blue circle", "--pair", "red->green", "--mask", m1, "--out", cr_path("e2"), NULL);
    cr_expect_error("a mask for one of two pairs", rc, "edit", "--mask");
    rc = cr_run("edit", "--model", model, "--clip", clip, "--image", img, "--prompt", src, "--pair",
                "red circle->blue circle", "--mask", cr_path("nope.png"), "--out", cr_path("e3"), NULL);
    cr_expect_error("mask file missing", rc, "edit", "nope.png");
    rc = cr_run("edit", "--model", model, "--clip", clip, "--image", img, "--prompt", src, "--pair",
                "red circle->blue circle", "--mask", cr_path("m_wrong.png"), "--out", cr_path("e4"), NULL);
    cr_expect_error("mask of the wrong size", rc, "edit", "m_wrong.png");
    rc = cr_run("edit", "--model", model, "--clip", clip, "--image", img, "--prompt", src, "--pair",
                "red circle->blue circle", "--mask", cr_path("m_empty.png"), "--steps", "3", "--out", cr_path("e5"),
                NULL);
    cr_expect_error("empty mask", rc, "edit", "empty");
    rc = cr_run("edit", "--model", model, "--clip", clip, "--image", img, "--prompt", src, "--pair",
                "horse->zebra", "--mask", m1, "--steps", "3", "--out", cr_path("e6"), NULL);
    cr_expect_error("phrase not in the prompt", rc, "edit", "horse");
    rc = cr_run("edit", "--model", model, "--clip", clip, "--image", img, "--prompt", src, "--pair",
                "red circle->blue circle", "--mask", "5,5,2,2", "--out", cr_path("e7"), NULL);
    cr_expect_error("inverted box", rc, "edit", "box");
    rc = cr_run("search", "--model", model, "--clip", clip, "--image", img, "--prompt", src, "--pair", "red->blue",
                "--mask", m1, "--pair", "circle->star", "--mask", m1, "--out", cr_path("e8"), NULL);
    cr_expect_error("search with two pairs", rc, "search", "exactly one");
    rc = cr_run("edit", "--model", model, "--clip", clip, "--image", cr_path("missing.png"), "--prompt", src,
                "--pair", "red circle->blue circle", "--mask", m1, "--out", cr_path("e9"), NULL);
    cr_expect_error("missing image", rc, "edit", "missing.png");
    rc = cr_run("edit", "--config", cr_path("nope.yaml"), NULL);
    cr_expect_error("missing YAML", rc, "edit", "nope.yaml");
    rc = cr_run("edit", "--model", model, "--image", cr_path("in.png"), "--prompt", "a photo of a red circle",
                "--pair", "red circle->blue circle", "--mask", cr_path("m1.png"), "--out", cr_path("noclip"), NULL);
    cr_expect_error("a model of one's own without --clip", rc, "edit", "without --clip");
    rc = cr_run("edit", "--steps", "0", NULL);
    cr_expect_error("bad --steps", rc, "edit", "--steps");
    rc = cr_run("edit", "--model", cr_path("no_model"), "--clip", clip, "--image", img, "--prompt", src, "--pair",
                "red circle->blue circle", "--mask", m1, "--out", cr_path("e10"), NULL);
    cr_expect_error("missing model", rc, "edit", "no_model");
    /* an output that would overwrite an input is refused, and the input survives */
    char in_copy[600];
    snprintf(in_copy, sizeof in_copy, "%s/edited.png", cr_tmp);
    FILE *a = fopen(img, "rb"), *b = fopen(in_copy, "wb");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    fclose(a);
    fclose(b);
    rc = cr_run("search", "--model", model, "--clip", clip, "--image", in_copy, "--prompt", src, "--pair",
                "red circle->blue circle", "--mask", m1, "--steps", "3", "--quiet", "--out", cr_tmp, NULL);
    cr_expect_error("output over the input", rc, "search", "edited.png");
    image back = {0};
    oir_error err = {0};
    CHECK(image_load(&back, in_copy, &err) == OIR_OK && back.width == 16, "input left intact");
    image_free(&back);
    CHECK(cr_run("search", "--help", NULL) == 0 && strstr(cr_out, "--pair"), "search --help");
    CHECK(cr_run("edit", "--help", NULL) == 0 && strstr(cr_out, "--reassembly-step"), "edit --help");
}

/* --pair: spaces around the phrases are trimmed; "->", "=>" and "=" separate
 * (the first one found); a phrase occurring twice in the prompt is an error. */
static void test_pair_syntax(void) {
    const char *forms[] = {"red circle -> blue circle", "  red circle=>blue circle ", "red circle = blue circle"};
    for (int i = 0; i < 3; i++) {
        char out[64];
        snprintf(out, sizeof out, "pair%d", i);
        int rc = cr_run("search", "--model", model, "--clip", clip, "--image", cr_path("in.png"), "--prompt",
                        "a photo of a red circle", "--pair", forms[i], "--mask", cr_path("m1.png"), "--steps", "2",
                        "--quiet", "--threads", "1", "--out", cr_path(out), NULL);
        cJSON *r = read_report(cr_path(out));
        cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "pairs"), 0);
        cJSON *from = cJSON_GetObjectItem(p0, "from"), *to = cJSON_GetObjectItem(p0, "to");
        CHECK(rc == 0 && cJSON_IsString(from) && cJSON_IsString(to) && !strcmp(from->valuestring, "red circle") &&
                  !strcmp(to->valuestring, "blue circle"),
              "--pair '%s': exit %d, from '%s' to '%s' %s", forms[i], rc, cJSON_IsString(from) ? from->valuestring : "",
              cJSON_IsString(to) ? to->valuestring : "", cr_err);
        cJSON_Delete(r);
    }
    const char *bad[] = {" -> cat", "dog ->  ", "dog->cat->cow"};
    for (int i = 0; i < 3; i++) {
        int rc = cr_run("search", "--model", model, "--clip", clip, "--image", cr_path("in.png"), "--prompt",
                        "a dog", "--pair", bad[i], "--mask", cr_path("m1.png"), "--out", cr_path("pairbad"), NULL);
        cr_expect_error(bad[i], rc, "search", "--pair");
    }
    int rc = cr_run("search", "--model", model, "--clip", clip, "--image", cr_path("in.png"), "--prompt",
                    "a red circle next to a red circle", "--pair", "red circle->blue circle", "--mask",
                    cr_path("m1.png"), "--steps", "2", "--quiet", "--out", cr_path("twice"), NULL);
    cr_expect_error("phrase twice in the prompt", rc, "search", "occurs 2 times");
}

/* The YAML's num_ddim_steps / guidance_scale / seed are used (flags win),
 * keys oir does not use are reported with the reason, unknown keys warned,
 * and report.json says where each setting came from. */
static void test_yaml_settings(void) {
    FILE *fp = fopen(cr_path("settings.yaml"), "w");
    fprintf(fp,
            "image_path: in.png\n"
            "origin_prompt: \"a photo of a red circle\"\n"
            "origin_change: ['red circle']\n"
            "prompt_change: ['blue circle']\n"
            "prompt_change_mask: ['m1.png']\n"
            "num_ddim_steps: 4\n"
            "guidance_scale: 3.5\n"
            "seed: 7\n"
            "ground_truth_path: gt.png\n"
            "guidance_scael: 2\n");
    fclose(fp);
    const char *out = cr_path("yset");
    int rc = cr_run("search", "--model", model, "--clip", clip, "--config", cr_path("settings.yaml"), "--quiet",
                    "--threads", "1", "--out", out, NULL);
    CHECK(rc == 0, "search --config settings.yaml: exit %d %s", rc, cr_err);
    CHECK(strstr(cr_err, "guidance_scael") && strstr(cr_err, "unknown"), "unknown key warned: \"%s\"", cr_err);
    CHECK(strstr(cr_err, "ground_truth_path") && strstr(cr_err, "ignored"), "unused key reported: \"%s\"", cr_err);
    cJSON *r = read_report(out);
    cJSON *st = cJSON_GetObjectItem(r, "steps"), *g = cJSON_GetObjectItem(r, "guidance"),
          *seed = cJSON_GetObjectItem(r, "seed"), *set = cJSON_GetObjectItem(r, "settings");
    CHECK(cJSON_IsNumber(st) && st->valueint == 4, "num_ddim_steps 4 used: steps %d", st ? st->valueint : -1);
    CHECK(cJSON_IsNumber(g) && g->valuedouble == 3.5, "guidance_scale 3.5 used: %g", g ? g->valuedouble : -1);
    CHECK(cJSON_IsNumber(seed) && seed->valueint == 7, "seed 7 recorded");
    cJSON *from = cJSON_GetObjectItem(cJSON_GetObjectItem(set, "steps"), "from");
    CHECK(cJSON_IsString(from) && !strcmp(from->valuestring, "yaml"), "settings.steps.from = yaml");
    from = cJSON_GetObjectItem(cJSON_GetObjectItem(set, "reassembly_step"), "from");
    CHECK(cJSON_IsString(from) && !strcmp(from->valuestring, "default"), "settings.reassembly_step.from = default");
    cJSON *w = cJSON_GetObjectItem(r, "config_warnings");
    CHECK(cJSON_GetArraySize(w) == 2, "report.json lists the 2 config warnings");
    cJSON_Delete(r);
    rc = cr_run("search", "--model", model, "--clip", clip, "--config", cr_path("settings.yaml"), "--quiet",
                "--threads", "1", "--steps", "3", "--out", out, NULL);
    r = read_report(out);
    st = cJSON_GetObjectItem(r, "steps");
    from = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), "steps"), "from");
    CHECK(rc == 0 && cJSON_IsNumber(st) && st->valueint == 3 && cJSON_IsString(from) &&
              !strcmp(from->valuestring, "flag"),
          "--steps 3 wins over num_ddim_steps (exit %d)", rc);
    from = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), "guidance"), "from");
    CHECK(cJSON_IsString(from) && !strcmp(from->valuestring, "yaml"), "guidance still from the YAML");
    cJSON_Delete(r);
    fp = fopen(cr_path("badset.yaml"), "w");
    fprintf(fp,
            "image_path: in.png\norigin_prompt: \"a red circle\"\norigin_change: ['red circle']\n"
            "prompt_change: ['blue circle']\nprompt_change_mask: ['m1.png']\nguidance_scale: lots\n");
    fclose(fp);
    rc = cr_run("search", "--model", model, "--clip", clip, "--config", cr_path("badset.yaml"), "--quiet", "--out",
                cr_path("ybad"), NULL);
    cr_expect_error("bad guidance_scale", rc, "search", "guidance_scale");
}

/* --search and the YAML key search: the strategy runs, report.json and the
 * settings record it with its source, skipped candidates are marked and have
 * null scores; a bad spec is a usage error naming it. */
static void test_search_option(void) {
    FILE *fp = fopen(cr_path("search.yaml"), "w");
    fprintf(fp,
            "image_path: in.png\n"
            "origin_prompt: \"a photo of a red circle\"\n"
            "origin_change: ['red circle']\n"
            "prompt_change: ['blue circle']\n"
            "prompt_change_mask: ['m1.png']\n"
            "num_ddim_steps: 8\n"
            "search: \"coarse:4\"\n");
    fclose(fp);
    const char *out = cr_path("ysearch");
    int rc = cr_run("search", "--model", model, "--clip", clip, "--config", cr_path("search.yaml"), "--quiet",
                    "--threads", "1", "--out", out, NULL);
    CHECK(rc == 0, "search with YAML search: coarse:4: exit %d %s", rc, cr_err);
    cJSON *r = read_report(out);
    cJSON *sr = cJSON_GetObjectItem(r, "search");
    cJSON *from = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), "search"), "from");
    CHECK(cJSON_IsString(sr) && !strcmp(sr->valuestring, "coarse:4") && cJSON_IsString(from) &&
              !strcmp(from->valuestring, "yaml"),
          "report.json: search coarse:4 from the YAML");
    cJSON *pair = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "pairs"), 0);
    cJSON *ev = cJSON_GetObjectItem(pair, "evaluated"), *es = cJSON_GetObjectItem(pair, "edit_score");
    int scored = 0, null_when_skipped = 1;
    for (int k = 0; k < cJSON_GetArraySize(ev); k++) {
        int e = cJSON_GetArrayItem(ev, k)->valueint;
        scored += e != 0;
        if (!e && !cJSON_IsNull(cJSON_GetArrayItem(es, k))) null_when_skipped = 0;
    }
    /* T = 8, coarse:4: 1, 4, 8, then the unevaluated steps within 3 of the best */
    CHECK(cJSON_GetArraySize(ev) == 8 && scored >= 3 && scored < 8, "evaluated marks %d of 8 scored", scored);
    CHECK(null_when_skipped, "skipped candidates have null scores in report.json");
    cJSON_Delete(r);
    rc = cr_run("search", "--model", model, "--clip", clip, "--config", cr_path("search.yaml"), "--quiet",
                "--threads", "1", "--search", "exhaustive", "--out", out, NULL);
    r = read_report(out);
    sr = cJSON_GetObjectItem(r, "search");
    from = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), "search"), "from");
    CHECK(rc == 0 && cJSON_IsString(sr) && !strcmp(sr->valuestring, "exhaustive") && cJSON_IsString(from) &&
              !strcmp(from->valuestring, "flag"),
          "--search exhaustive wins over the YAML (exit %d)", rc);
    cJSON_Delete(r);
    rc = cr_run("search", "--model", model, "--clip", clip, "--config", cr_path("search.yaml"), "--quiet",
                "--search", "short:9", "--out", cr_path("ysbad"), NULL);
    cr_expect_error("--search short:9 with T = 8", rc, "search", "short:9");
}

int main(int argc, char **argv) {
    (void)argc;
    if (cr_init(argv[0])) {
        CHECK(0, "cannot set up the CLI runner");
        return th_summary();
    }
    snprintf(model, sizeof model, "%s", th_fixture_path("sd/tiny-pipe"));
    snprintf(clip, sizeof clip, "%s", th_fixture_path("sd/clip-tiny"));
    write_inputs();
    test_edit_outputs();
    test_errors();
    test_pair_syntax();
    test_yaml_settings();
    test_search_option();
    cr_cleanup();
    return th_summary();
}
