/* --low-pick MODE and --guard MARGIN|off (oir edit / oir search) and their
 * YAML keys low_pick and guard, on the tiny random pipeline: report.json
 * records the modes, where they came from, the re-inverted pairs, the
 * source's own score and the eligible candidates; bad values are usage
 * errors (exit 2) before anything runs. */
#include <cjson/cJSON.h>
#include <math.h>

#include "cli_runner.h"
#include "io/edit_config.h"
#include "io/image.h"

#define T_STEPS "6"

static char model[1024], clip[1024];
static const char *src = "a photo of a red circle and a green square";

static void write_inputs(void) {
    oir_error err = {0};
    image img = {0}, m1 = {0}, m2 = {0};
    image_alloc(&img, 16, 16, 3, &err);
    image_alloc(&m1, 16, 16, 1, &err);
    image_alloc(&m2, 16, 16, 1, &err);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            float *p = img.data + (y * 16 + x) * 3;
            int left = x >= 2 && x < 7 && y >= 5 && y < 11, right = x >= 9 && x < 14 && y >= 5 && y < 11;
            p[0] = left ? 0.9f : 0.5f;
            p[1] = right ? 0.8f : 0.5f;
            p[2] = 0.5f;
            m1.data[y * 16 + x] = (float)left;
            m2.data[y * 16 + x] = (float)right;
        }
    image_save_png(&img, cr_path("in.png"), &err);
    image_save_png(&m1, cr_path("m1.png"), &err);
    image_save_png(&m2, cr_path("m2.png"), &err);
    image_free(&img);
    image_free(&m1);
    image_free(&m2);
}

static cJSON *read_report(const char *dir) {
    static char buf[1 << 20];
    char p[600];
    snprintf(p, sizeof p, "%s/report.json", dir);
    cr_read(p, buf, sizeof buf);
    return cJSON_Parse(buf);
}

static int num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const cJSON *pair_at(const cJSON *r, int i) { return cJSON_GetArrayItem(cJSON_GetObjectItem(r, "pairs"), i); }
static const cJSON *setting(const cJSON *r, const char *name) {
    return cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), name);
}

/* The two-pair edit at R = 3, with extra arguments (up to 6) before the NULL. */
static int run_edit(const char *out, const char *a, const char *b, const char *c, const char *d, const char *e,
                    const char *f) {
    return cr_run("edit", "--model", model, "--clip", clip, "--image", cr_path("in.png"), "--prompt", src, "--pair",
                  "red circle->blue circle", "--mask", cr_path("m1.png"), "--pair", "green square->green star",
                  "--mask", cr_path("m2.png"), "--steps", T_STEPS, "--reassembly-step", "3", "--reinversion-steps",
                  "2", "--quiet", "--threads", "1", "--out", out, a, b, c, d, e, f, NULL);
}

static void test_low_pick(void) {
    /* pair 1 picked at step 1 <= R = 3: the default lowers R to 0 */
    const char *out = cr_path("lower");
    int rc = run_edit(out, "--pick", "1=1", "--pick", "2=5", NULL, NULL);
    cJSON *r = read_report(out);
    CHECK(rc == 0 && r, "default: exit %d %s", rc, cr_err);
    if (r) {
        CHECK(num(r, "reassembly_step") == 0 && !strcmp(str(r, "low_pick"), "lower") &&
                  !strcmp(str(setting(r, "low_pick"), "from"), "default") && num(r, "low_pick_unet_rows") == 0,
              "default low_pick lower: R lowered to 0 (%d)", num(r, "reassembly_step"));
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(pair_at(r, 0), "reinverted")), "lower: nothing re-inverted");
        CHECK(!strcmp(str(r, "guard"), "off") && !strcmp(str(setting(r, "guard"), "value"), "off") &&
                  !cJSON_GetObjectItem(pair_at(r, 0), "eligible"),
              "guard off by default: no eligibility in the report");
    }
    cJSON_Delete(r);
    out = cr_path("reinvert");
    rc = run_edit(out, "--pick", "1=1", "--pick", "2=5", "--low-pick", "reinvert");
    r = read_report(out);
    CHECK(rc == 0 && r, "--low-pick reinvert: exit %d %s", rc, cr_err);
    if (r) {
        CHECK(num(r, "reassembly_step") == 3 && !strcmp(str(r, "low_pick"), "reinvert") &&
                  !strcmp(str(setting(r, "low_pick"), "value"), "reinvert") &&
                  !strcmp(str(setting(r, "low_pick"), "from"), "flag"),
              "reinvert: R = 3 kept, recorded from the flag (R %d)", num(r, "reassembly_step"));
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(pair_at(r, 0), "reinverted")) &&
                  cJSON_IsFalse(cJSON_GetObjectItem(pair_at(r, 1), "reinverted")) && num(r, "low_pick_unet_rows") == 3,
              "reinvert: pair 1 re-inverted (3 inversion rows: %d), pair 2 not", num(r, "low_pick_unet_rows"));
        CHECK(strstr(cr_out, "kept (low_pick reinvert)") != NULL, "the summary warns: %s", cr_out);
    }
    cJSON_Delete(r);
    CHECK(cr_run("edit", "--help", NULL) == 0 && strstr(cr_out, "--low-pick MODE") && strstr(cr_out, "--guard MARGIN"),
          "edit --help documents --low-pick and --guard");
}

static void test_guard(void) {
    const char *out = cr_path("guard");
    int rc = run_edit(out, "--guard", "0.001", NULL, NULL, NULL, NULL);
    cJSON *r = read_report(out);
    CHECK(rc == 0 && r, "--guard 0.001: exit %d %s", rc, cr_err);
    if (r) {
        const cJSON *g = setting(r, "guard");
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(g, "value")) &&
                  fabs(cJSON_GetObjectItem(g, "value")->valuedouble - 0.001) < 1e-12 && !strcmp(str(g, "from"), "flag"),
              "settings.guard = 0.001 from the flag");
        for (int i = 0; i < 2; i++) {
            const cJSON *p = pair_at(r, i), *el = cJSON_GetObjectItem(p, "eligible"),
                        *sc = cJSON_GetObjectItem(p, "edit_score");
            const cJSON *s = cJSON_GetObjectItem(p, "source_edit_score");
            int ok = cJSON_IsNumber(s) && cJSON_GetArraySize(el) == 6 && cJSON_GetArraySize(sc) == 6 &&
                     cJSON_IsBool(cJSON_GetObjectItem(p, "guard_fallback"));
            for (int k = 0; ok && k < 6; k++)
                ok = cJSON_GetArrayItem(el, k)->valueint ==
                     (cJSON_GetArrayItem(sc, k)->valuedouble > s->valuedouble + 0.001 - 1e-6);
            CHECK(ok, "pair %d: source_edit_score and eligible (edit > source + margin) in the report", i + 1);
        }
    }
    cJSON_Delete(r);
    /* a margin no candidate reaches: the plain choice, a warning in the report */
    out = cr_path("guard_all");
    rc = run_edit(out, "--guard", "50", NULL, NULL, NULL, NULL);
    r = read_report(out);
    CHECK(rc == 0 && r && cJSON_IsTrue(cJSON_GetObjectItem(pair_at(r, 0), "guard_fallback")) &&
              strstr(cr_out, "no-edit guard"),
          "--guard 50: falls back with a warning (exit %d)", rc);
    cJSON_Delete(r);
}

static void write_yaml(const char *name, const char *extra) {
    FILE *fp = fopen(cr_path(name), "w");
    fprintf(fp,
            "two:\n"
            "  image_path: in.png\n"
            "  origin_prompt: \"%s\"\n"
            "  origin_change: ['red circle', 'green square']\n"
            "  prompt_change: ['blue circle', 'green star']\n"
            "  prompt_change_mask: ['m1.png', 'm2.png']\n"
            "  reassembly_step: 3\n"
            "  reinversion_steps: 1\n"
            "  num_ddim_steps: " T_STEPS "\n"
            "  pick: {1: 2, 2: 6}\n"
            "%s",
            src, extra);
    fclose(fp);
}

static void test_yaml(void) {
    write_yaml("lp.yaml", "  low_pick: reinvert\n  guard: 0.02\n");
    const char *out = cr_path("ylp");
    int rc = cr_run("edit", "--model", model, "--clip", clip, "--config", cr_path("lp.yaml"), "--quiet", "--threads",
                    "1", "--out", out, NULL);
    cJSON *r = read_report(out);
    CHECK(rc == 0 && r && num(r, "reassembly_step") == 3 && !strcmp(str(setting(r, "low_pick"), "from"), "yaml") &&
              !strcmp(str(setting(r, "guard"), "from"), "yaml"),
          "YAML low_pick reinvert and guard 0.02 taken (exit %d %s)", rc, cr_err);
    CHECK(!strstr(cr_err, "'low_pick'") && !strstr(cr_err, "'guard'"), "known keys: %s", cr_err);
    cJSON_Delete(r);
    rc = cr_run("edit", "--model", model, "--clip", clip, "--config", cr_path("lp.yaml"), "--quiet", "--threads", "1",
                "--low-pick", "lower", "--guard", "off", "--out", out, NULL);
    r = read_report(out);
    CHECK(rc == 0 && r && num(r, "reassembly_step") == 1 && !strcmp(str(setting(r, "low_pick"), "from"), "flag") &&
              !strcmp(str(r, "guard"), "off") && !strcmp(str(setting(r, "guard"), "from"), "flag"),
          "--low-pick lower --guard off win over the YAML (exit %d %s)", rc, cr_err);
    cJSON_Delete(r);
    /* bad YAML values: usage errors naming the file, case and key */
    static const struct {
        const char *extra, *needle;
        int status; /* a bad value: a usage error (2); not a word at all: a malformed file (1) */
    } bad[] = {{"  low_pick: sideways\n", "case 'two': low_pick 'sideways'", 2},
               {"  guard: -0.2\n", "case 'two': guard '-0.2'", 2},
               {"  guard: [1]\n", "guard must be", 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_yaml("bad.yaml", bad[i].extra);
        rc = cr_run("edit", "--model", model, "--clip", clip, "--config", cr_path("bad.yaml"), "--quiet", "--out",
                    cr_path("ybad"), NULL);
        cr_expect_error(bad[i].extra, rc, "edit", bad[i].needle);
        CHECK(rc == bad[i].status, "%s: exit %d (%d)", bad[i].extra, bad[i].status, rc);
    }
    /* low_pick in a single_object case: reported as unused (one pair, no reassembly) */
    FILE *fp = fopen(cr_path("single.yaml"), "w");
    fprintf(fp, "cat:\n  image_path: in.png\n  origin_prompt: \"a red circle\"\n  origin_prompt_mask: m1.png\n"
                "  target_prompt_list: ['a ', '']\n  target_changes: ['blue circle']\n  low_pick: reinvert\n"
                "  guard: 0.5\n");
    fclose(fp);
    edit_config cfg;
    oir_error err = {0};
    rc = edit_config_load(&cfg, cr_path("single.yaml"), &err);
    CHECK(rc == OIR_OK && cfg.n_warnings == 1 && strstr(cfg.warnings[0], "'low_pick'") &&
              !strcmp(cfg.cases[0].guard, "0.5") && !cfg.cases[0].low_pick[0],
          "single_object: guard kept, low_pick warned as unused (%s)", rc ? err.message : cfg.warnings[0]);
    if (!rc) edit_config_free(&cfg);
}

static void test_errors(void) {
    static const struct {
        const char *flag, *value, *needle;
    } bad[] = {{"--low-pick", "sideways", "--low-pick 'sideways': expected lower"},
               {"--low-pick", "", "--low-pick ''"},
               {"--guard", "-0.01", "--guard '-0.01': expected off or a margin >= 0"},
               {"--guard", "nan", "--guard 'nan'"},
               {"--guard", "inf", "--guard 'inf'"},
               {"--guard", "0.1x", "--guard '0.1x'"},
               {"--guard", "", "--guard ''"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *out = cr_path("bad_flag");
        int rc = run_edit(out, bad[i].flag, bad[i].value, NULL, NULL, NULL, NULL);
        char what[96];
        snprintf(what, sizeof what, "%s '%s'", bad[i].flag, bad[i].value);
        cr_expect_error(what, rc, "edit", bad[i].needle);
        CHECK(rc == 2, "%s: exit 2 (%d)", what, rc);
        CHECK(access(out, F_OK) != 0, "%s: nothing written", what);
    }
    int rc = cr_run("search", "--model", model, "--clip", clip, "--image", cr_path("in.png"), "--prompt",
                    "a photo of a red circle", "--pair", "red circle->blue circle", "--mask", cr_path("m1.png"),
                    "--steps", T_STEPS, "--quiet", "--guard", "-1", "--out", cr_path("sbad"), NULL);
    cr_expect_error("search --guard -1", rc, "search", "--guard '-1'");
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
    test_low_pick();
    test_guard();
    test_yaml();
    test_errors();
    cr_cleanup();
    return th_summary();
}
