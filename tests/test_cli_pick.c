/* --pick PAIR=STEP and the YAML key pick (oir edit / oir search) on the tiny
 * random pipeline: picked pairs are not searched, report.json says which
 * steps were picked and where the picks came from, taking the searched
 * steps reproduces the searched edit, and bad picks are usage errors. */
#include <cjson/cJSON.h>

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

/* The two-pair edit, with extra arguments (up to 6) before the NULL. */
static int run_edit(const char *out, const char *a, const char *b, const char *c, const char *d) {
    return cr_run("edit", "--model", model, "--clip", clip, "--image", cr_path("in.png"), "--prompt", src, "--pair",
                  "red circle->blue circle", "--mask", cr_path("m1.png"), "--pair", "green square->green star",
                  "--mask", cr_path("m2.png"), "--steps", T_STEPS, "--reassembly-step", "1", "--reinversion-steps",
                  "2", "--quiet", "--threads", "1", "--out", out, a, b, c, d, NULL);
}

static int same_pixels(const char *dir_a, const char *dir_b, const char *name) {
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/%s", dir_a, name);
    snprintf(pb, sizeof pb, "%s/%s", dir_b, name);
    image a = {0}, b = {0};
    oir_error err = {0};
    int same = image_load(&a, pa, &err) == OIR_OK && image_load(&b, pb, &err) == OIR_OK && a.width == b.width &&
               a.height == b.height && a.channels == b.channels &&
               !memcmp(a.data, b.data, sizeof(float) * (size_t)a.width * a.height * a.channels);
    image_free(&a);
    image_free(&b);
    return same;
}

static void test_edit_pick(void) {
    const char *searched = cr_path("searched");
    int rc = run_edit(searched, NULL, NULL, NULL, NULL);
    CHECK(rc == 0, "searched edit: exit %d %s", rc, cr_err);
    CHECK(strstr(cr_out, "--pick 1=") && strstr(cr_out, "--pick 2="), "the summary says how to pick: %s", cr_out);
    cJSON *r = read_report(searched);
    if (!CHECK(r != NULL, "searched report")) return;
    int k1 = num(pair_at(r, 0), "chosen_step"), k2 = num(pair_at(r, 1), "chosen_step");
    int full_rows = num(r, "candidate_unet_rows");
    CHECK(!strcmp(str(pair_at(r, 0), "step_from"), "searched"), "searched run: step_from searched");
    cJSON *pk = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), "pick");
    CHECK(!strcmp(str(pk, "from"), "default") && cJSON_GetArraySize(cJSON_GetObjectItem(pk, "value")) == 0,
          "searched run: settings.pick is empty, from default");
    cJSON_Delete(r);

    /* both picked at the searched steps (one by number, one by phrase): no search, the same edit */
    char a1[32], a2[64];
    snprintf(a1, sizeof a1, "1=%d", k1);
    snprintf(a2, sizeof a2, " Green Square = %d", k2);
    const char *picked = cr_path("picked");
    rc = run_edit(picked, "--pick", a1, "--pick", a2);
    CHECK(rc == 0, "--pick %s --pick '%s': exit %d %s", a1, a2, rc, cr_err);
    CHECK(strstr(cr_out, "picked step") != NULL && !strstr(cr_out, "to take other"), "summary says picked: %s",
          cr_out);
    r = read_report(picked);
    if (!CHECK(r != NULL, "picked report")) return;
    CHECK(num(pair_at(r, 0), "chosen_step") == k1 && num(pair_at(r, 1), "chosen_step") == k2,
          "picked steps %d, %d taken", k1, k2);
    CHECK(!strcmp(str(pair_at(r, 0), "step_from"), "picked") && !strcmp(str(pair_at(r, 1), "step_from"), "picked"),
          "step_from: picked, picked");
    CHECK(num(r, "candidate_unet_rows") == 2 * (k1 + k2),
          "only the picked candidates denoised: %d rows, expected 2 x (%d + %d)", num(r, "candidate_unet_rows"), k1,
          k2);
    CHECK(num(r, "vae_decodes") == 3, "3 decodes: the 2 picked candidates and the result (%d)",
          num(r, "vae_decodes"));
    CHECK(!strcmp(str(r, "search"), "none"), "search: none (%s)", str(r, "search"));
    pk = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), "pick");
    CHECK(!strcmp(str(pk, "from"), "flag") && num(cJSON_GetObjectItem(pk, "value"), "1") == k1 &&
              num(cJSON_GetObjectItem(pk, "value"), "2") == k2,
          "settings.pick = {1: %d, 2: %d} from flag", k1, k2);
    const cJSON *ev = cJSON_GetObjectItem(pair_at(r, 0), "evaluated");
    int marked = 0, skipped = 0;
    for (int k = 0; k < cJSON_GetArraySize(ev); k++) {
        int e = cJSON_GetArrayItem(ev, k)->valueint;
        marked += e == OIR_EVALUATED_FORCED && k + 1 == k1;
        skipped += e == 0;
    }
    CHECK(marked == 1 && skipped == 5, "pair 1: step %d marked picked, the other 5 skipped", k1);
    cJSON_Delete(r);
    CHECK(same_pixels(searched, picked, "edited.png"), "picking the searched steps gives the searched edited.png");

    /* one pair picked at another step: the other is still searched */
    int other = k2 == 1 ? 2 : 1;
    snprintf(a2, sizeof a2, "2=%d", other);
    const char *one = cr_path("one");
    rc = run_edit(one, "--pick", a2, NULL, NULL);
    r = read_report(one);
    CHECK(rc == 0 && r && num(pair_at(r, 1), "chosen_step") == other && num(pair_at(r, 0), "chosen_step") == k1 &&
              !strcmp(str(pair_at(r, 0), "step_from"), "searched") &&
              !strcmp(str(pair_at(r, 1), "step_from"), "picked"),
          "--pick %s: pair 2 takes step %d, pair 1 searched (step %d) (exit %d %s)", a2, other, k1, rc, cr_err);
    CHECK(r && num(r, "candidate_unet_rows") == full_rows / 2 + 2 * other,
          "--pick %s: pair 1's search + the picked candidate: %d rows, expected %d", a2,
          r ? num(r, "candidate_unet_rows") : -1, full_rows / 2 + 2 * other);
    cJSON_Delete(r);
}

static void test_search_pick(void) {
    const char *out = cr_path("search_pick");
    int rc = cr_run("search", "--model", model, "--clip", clip, "--image", cr_path("in.png"), "--prompt",
                    "a photo of a red circle", "--pair", "red circle->blue circle", "--mask", cr_path("m1.png"),
                    "--steps", T_STEPS, "--quiet", "--threads", "1", "--pick", "red circle=3", "--out", out, NULL);
    cJSON *r = read_report(out);
    CHECK(rc == 0 && r && num(pair_at(r, 0), "chosen_step") == 3 && num(r, "candidate_unet_rows") == 6 &&
              num(r, "vae_decodes") == 1,
          "search --pick 'red circle=3': step 3, 6 rows, one decode (exit %d %s)", rc, cr_err);
    cJSON_Delete(r);
    CHECK(cr_run("search", "--help", NULL) == 0 && strstr(cr_out, "--pick PAIR=STEP"), "search --help has --pick");
    CHECK(cr_run("edit", "--help", NULL) == 0 && strstr(cr_out, "--pick PAIR=STEP"), "edit --help has --pick");
}

/* The YAML's pick, as a mapping; --pick replaces it. */
static void test_yaml_pick(void) {
    FILE *fp = fopen(cr_path("pick.yaml"), "w");
    fprintf(fp,
            "two:\n"
            "  image_path: in.png\n"
            "  origin_prompt: \"%s\"\n"
            "  origin_change: ['red circle', 'green square']\n"
            "  prompt_change: ['blue circle', 'green star']\n"
            "  prompt_change_mask: ['m1.png', 'm2.png']\n"
            "  reassembly_step: 1\n"
            "  reinversion_steps: 1\n"
            "  num_ddim_steps: " T_STEPS "\n"
            "  pick: {2: 4, red circle: 5}\n",
            src);
    fclose(fp);
    const char *out = cr_path("ypick");
    int rc = cr_run("edit", "--model", model, "--clip", clip, "--config", cr_path("pick.yaml"), "--quiet",
                    "--threads", "1", "--out", out, NULL);
    cJSON *r = read_report(out);
    cJSON *pk = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), "pick");
    CHECK(rc == 0 && r && num(pair_at(r, 0), "chosen_step") == 5 && num(pair_at(r, 1), "chosen_step") == 4 &&
              !strcmp(str(pk, "from"), "yaml") && num(r, "candidate_unet_rows") == 2 * (5 + 4),
          "YAML pick {2: 4, red circle: 5} taken (exit %d %s)", rc, cr_err);
    CHECK(!strstr(cr_err, "'pick'"), "pick is a known key: %s", cr_err);
    cJSON_Delete(r);
    rc = cr_run("edit", "--model", model, "--clip", clip, "--config", cr_path("pick.yaml"), "--quiet", "--threads",
                "1", "--pick", "1=2", "--out", out, NULL);
    r = read_report(out);
    pk = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), "pick");
    CHECK(rc == 0 && r && num(pair_at(r, 0), "chosen_step") == 2 &&
              !strcmp(str(pair_at(r, 1), "step_from"), "searched") && !strcmp(str(pk, "from"), "flag") &&
              cJSON_GetArraySize(cJSON_GetObjectItem(pk, "value")) == 1,
          "--pick 1=2 replaces the YAML's pick (exit %d %s)", rc, cr_err);
    cJSON_Delete(r);
    /* a YAML pick naming no pair: a usage error naming the file and case */
    fp = fopen(cr_path("badpick.yaml"), "w");
    fprintf(fp,
            "image_path: in.png\norigin_prompt: \"a red circle\"\norigin_change: ['red circle']\n"
            "prompt_change: ['blue circle']\nprompt_change_mask: ['m1.png']\npick: ['horse=2']\n");
    fclose(fp);
    rc = cr_run("search", "--model", model, "--clip", clip, "--config", cr_path("badpick.yaml"), "--quiet", "--out",
                cr_path("ybad"), NULL);
    cr_expect_error("YAML pick of an unknown pair", rc, "search", "badpick.yaml: case 'badpick.yaml': pick 'horse=2'");
    CHECK(rc == 2, "exit 2 for a bad YAML pick (%d)", rc);
}

/* pick's three YAML forms, refused forms, and single_object files giving
 * each target change the file's pick and search. */
static void test_yaml_forms(void) {
    static const struct {
        const char *yaml;
        int n;
        const char *first, *second;
    } forms[] = {{"pick: {2: 27, cat: 3}", 2, "2=27", "cat=3"},
                 {"pick: ['2=27', ' cat = 3 ']", 2, "2=27", " cat = 3 "},
                 {"pick: '1=4'", 1, "1=4", NULL}};
    for (int f = 0; f < 3; f++) {
        FILE *fp = fopen(cr_path("form.yaml"), "w");
        fprintf(fp,
                "image_path: in.png\norigin_prompt: \"a red circle\"\norigin_change: ['red circle']\n"
                "prompt_change: ['blue circle']\nprompt_change_mask: ['m1.png']\n%s\n",
                forms[f].yaml);
        fclose(fp);
        edit_config cfg;
        oir_error err = {0};
        int rc = edit_config_load(&cfg, cr_path("form.yaml"), &err);
        CHECK(rc == OIR_OK && cfg.n_cases == 1 && cfg.cases[0].n_pick == forms[f].n &&
                  !strcmp(cfg.cases[0].pick[0], forms[f].first) &&
                  (!forms[f].second || !strcmp(cfg.cases[0].pick[1], forms[f].second)) && cfg.n_warnings == 0,
              "%s: %d picks read (%s)", forms[f].yaml, rc ? -1 : cfg.cases[0].n_pick, err.message);
        if (!rc) edit_config_free(&cfg);
    }
    static const char *bad[] = {"pick: [[1, 2]]", "pick: []", "pick: {1: [2]}"};
    for (int b = 0; b < 3; b++) {
        FILE *fp = fopen(cr_path("form.yaml"), "w");
        fprintf(fp,
                "image_path: in.png\norigin_prompt: \"a red circle\"\norigin_change: ['red circle']\n"
                "prompt_change: ['blue circle']\nprompt_change_mask: ['m1.png']\n%s\n",
                bad[b]);
        fclose(fp);
        edit_config cfg;
        oir_error err = {0};
        int rc = edit_config_load(&cfg, cr_path("form.yaml"), &err);
        CHECK(rc == OIR_E_FORMAT && strstr(err.message, "pick must be"), "%s refused: %s", bad[b], err.message);
        if (!rc) edit_config_free(&cfg);
    }
    FILE *fp = fopen(cr_path("single.yaml"), "w");
    fprintf(fp,
            "cat:\n  image_path: in.png\n  origin_prompt: \"a red circle\"\n  origin_prompt_mask: m1.png\n"
            "  target_prompt_list: ['a ', '']\n  target_changes: ['blue circle', 'green star']\n"
            "  search: 'coarse:2'\n  pick: {1: 3}\n");
    fclose(fp);
    edit_config cfg;
    oir_error err = {0};
    int rc = edit_config_load(&cfg, cr_path("single.yaml"), &err);
    int ok = rc == OIR_OK && cfg.n_cases == 2;
    for (int i = 0; ok && i < 2; i++)
        ok = cfg.cases[i].n_pick == 1 && !strcmp(cfg.cases[i].pick[0], "1=3") &&
             !strcmp(cfg.cases[i].search, "coarse:2");
    CHECK(ok, "single_object: every target change gets the file's pick and search (%s)", err.message);
    if (!rc) edit_config_free(&cfg);
}

static void test_errors(void) {
    static const struct {
        const char *a, *b, *needle;
    } bad[] = {{"7", NULL, "expected PAIR=STEP"},
               {"1=0", NULL, "outside 1..6"},
               {"1=7", NULL, "outside 1..6"},
               {"1=x", NULL, "not a step number"},
               {"=3", NULL, "no PAIR"},
               {"3=2", NULL, "no pair 3"},
               {"horse=2", NULL, "no pair's FROM phrase is 'horse'"},
               {"1=2", "red circle=3", "both pick pair 1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *out = cr_path("bad_pick");
        int rc = run_edit(out, "--pick", bad[i].a, bad[i].b ? "--pick" : NULL, bad[i].b);
        char what[96];
        snprintf(what, sizeof what, "--pick %s%s%s", bad[i].a, bad[i].b ? " --pick " : "", bad[i].b ? bad[i].b : "");
        cr_expect_error(what, rc, "edit", bad[i].needle);
        CHECK(rc == 2, "%s: exit 2 (%d)", what, rc);
        CHECK(access(out, F_OK) != 0, "%s: nothing written", what);
    }
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
    test_edit_pick();
    test_search_pick();
    test_yaml_pick();
    test_yaml_forms();
    test_errors();
    cr_cleanup();
    return th_summary();
}
