/* The plan line, --plan, the calibration cache and the progress bars of
 * `oir edit` / `oir search` (cli/cli_plan.c, cli/calibrate.c,
 * cli/progress.c) on the tiny random pipeline:
 *  - the plan line on stderr (not a tty) before the run, report.json's
 *    "plan" equal to the measured counters for an exact plan;
 *  - --plan prints and writes nothing; a bad input is still one error line;
 *  - the calibration is cached under $XDG_CACHE_HOME/oir, used by
 *    --no-calibrate / OIR_NO_CALIBRATE, rebuilt when corrupt, and an
 *    unwritable cache is no error;
 *  - a slow (cached) calibration makes a long estimate and a hint naming
 *    quicker settings;
 *  - on a terminal (a pty): a bar per stage, the encode shown, decodes in
 *    one bar, the run's overall percentage. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <pty.h>
#include <sys/stat.h>

#include "cli_runner.h"
#include "io/image.h"

static char model[1024], clip[1024], cache[600], img[600], m1[600];
static const char *SRC = "a photo of a red circle and a green square";

static cJSON *read_json(const char *path) {
    static char buf[1 << 20];
    cr_read(path, buf, sizeof buf);
    return cJSON_Parse(buf);
}

static cJSON *report_of(const char *dir) {
    char p[700];
    snprintf(p, sizeof p, "%s/report.json", dir);
    return read_json(p);
}

static double num(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345;
}

static const char *str(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void write_inputs(void) {
    oir_error err = {0};
    image im = {0}, m = {0};
    image_alloc(&im, 16, 16, 3, &err);
    image_alloc(&m, 16, 16, 1, &err);
    for (int i = 0; i < 256; i++) {
        im.data[i * 3] = (i % 16) / 16.0f;
        im.data[i * 3 + 1] = 0.5f;
        im.data[i * 3 + 2] = (i / 16) / 16.0f;
        m.data[i] = (i % 16) < 8;
    }
    snprintf(img, sizeof img, "%s", cr_path("in.png"));
    snprintf(m1, sizeof m1, "%s", cr_path("m1.png"));
    image_save_png(&im, img, &err);
    image_save_png(&m, m1, &err);
    image_free(&im);
    image_free(&m);
}

static int run_search(const char *out, const char *extra1, const char *extra2) {
    return cr_run("search", "--model", model, "--clip", clip, "--image", img, "--prompt", SRC, "--pair",
                  "red circle->blue circle", "--mask", m1, "--steps", "5", "--threads", "1", "--out", out, extra1,
                  extra2, NULL);
}

static void test_plan_line_and_report(void) {
    const char *out = cr_path("out1");
    int rc = run_search(out, NULL, NULL);
    CHECK(rc == 0, "search: exit %d: %s", rc, cr_err);
    CHECK(strstr(cr_err, "oir search: plan: 1 pair, T=5, search exhaustive, 16x16 -> 35 UNet rows, 5 decodes") != NULL,
          "the plan line (stderr, no tty): %s", cr_err);
    CHECK(strstr(cr_err, "on this machine") && strstr(cr_err, "per UNet row") && strstr(cr_err, "measured "),
          "the plan line has the estimate and the calibration: %s", cr_err);
    CHECK(strstr(cr_err, "ran ") && strstr(cr_err, "(estimated "), "a line compares the run with the estimate: %s",
          cr_err);
    CHECK(strstr(cr_err, "\r") == NULL && strstr(cr_err, "[###") == NULL, "no bars when stderr is not a tty");
    CHECK(strstr(cr_err, "hint:") == NULL, "a short run gets no hint");
    cJSON *r = report_of(out), *pl = r ? cJSON_GetObjectItem(r, "plan") : NULL;
    if (CHECK(pl != NULL, "report.json has a plan")) {
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(pl, "exact")), "exhaustive, one pair: an exact plan");
        CHECK(num(pl, "unet_rows") == num(r, "unet_rows_total") && num(pl, "unet_rows") == 35,
              "planned UNet rows %.0f == measured %.0f", num(pl, "unet_rows"), num(r, "unet_rows_total"));
        CHECK(num(pl, "vae_decodes") == num(r, "vae_decodes"), "planned decodes %.0f == measured %.0f",
              num(pl, "vae_decodes"), num(r, "vae_decodes"));
        CHECK(num(pl, "candidate_unet_rows") == num(r, "candidate_unet_rows"), "planned search rows == measured");
        CHECK(num(pl, "estimate_seconds") > 0 && num(pl, "seconds_per_unet_row") > 0 && num(pl, "seconds_per_decode") > 0,
              "estimate and unit times");
        cJSON *c = cJSON_GetObjectItem(pl, "calibration");
        CHECK(!strcmp(str(c, "from"), "measured") && num(c, "threads") == 1, "calibration measured at 1 thread (%s)",
              str(c, "from"));
    }
    cJSON_Delete(r);
    /* the cache holds this model, size, threads, CPU and version */
    char p[700];
    snprintf(p, sizeof p, "%s/oir/calibration.json", cache);
    cJSON *cj = read_json(p), *e = cj ? cJSON_GetArrayItem(cJSON_GetObjectItem(cj, "entries"), 0) : NULL;
    CHECK(e && strstr(str(e, "model"), "tiny-pipe") && num(e, "width") == 16 && num(e, "threads") == 1 &&
              str(e, "cpu")[0] && !strcmp(str(e, "oir_version"), oir_version()) && !strcmp(str(e, "device"), "cpu") &&
              cJSON_GetArraySize(cJSON_GetObjectItem(e, "unet_rows")) == 3,
          "the calibration is cached in $XDG_CACHE_HOME/oir/calibration.json, keyed by the UNet's device");
    cJSON_Delete(cj);
    /* several pairs: the reassembly depends on the choices, the bounds hold */
    out = cr_path("out2");
    rc = cr_run("edit", "--model", model, "--clip", clip, "--image", img, "--prompt", SRC, "--pair",
                "red circle->blue circle", "--mask", m1, "--pair", "green square->green star", "--mask", "8,0,16,16",
                "--steps", "6", "--reassembly-step", "2", "--reinversion-steps", "2", "--search", "adaptive:3",
                "--quiet", "--out", out, NULL);
    CHECK(rc == 0 && cr_err[0] == '\0', "edit --quiet: exit %d, nothing on stderr: %s", rc, cr_err);
    r = report_of(out);
    pl = r ? cJSON_GetObjectItem(r, "plan") : NULL;
    CHECK(pl && !cJSON_IsTrue(cJSON_GetObjectItem(pl, "exact")) &&
              num(pl, "unet_rows_min") <= num(r, "unet_rows_total") &&
              num(r, "unet_rows_total") <= num(pl, "unet_rows_max") &&
              num(pl, "vae_decodes_min") <= num(r, "vae_decodes") && num(r, "vae_decodes") <= num(pl, "vae_decodes_max"),
          "adaptive, 2 pairs: measured rows %.0f within the plan's [%.0f, %.0f]", num(r, "unet_rows_total"),
          num(pl, "unet_rows_min"), num(pl, "unet_rows_max"));
    cJSON_Delete(r);
}

static void test_plan_only(void) {
    const char *out = cr_path("never");
    int rc = run_search(out, "--plan", NULL);
    CHECK(rc == 0, "--plan: exit %d: %s", rc, cr_err);
    CHECK(strncmp(cr_out, "plan: 1 pair, T=5", 17) == 0 && strstr(cr_out, "35 UNet rows"), "--plan prints the plan: %s",
          cr_out);
    CHECK(access(out, F_OK) != 0, "--plan writes no output folder");
    CHECK(strstr(cr_out, "chosen step") == NULL, "--plan does not run");
    /* several cases: a plan each and their total */
    FILE *fp = fopen(cr_path("two.yaml"), "w");
    fprintf(fp,
            "one:\n  image_path: in.png\n  origin_prompt: \"%s\"\n  target_prompt: \"a photo of a blue circle and a green square\"\n"
            "  origin_change: ['red circle']\n  prompt_change: ['blue circle']\n  prompt_change_mask: ['m1.png']\n"
            "two:\n  image_path: in.png\n  origin_prompt: \"%s\"\n  target_prompt: \"a photo of a red circle and a green star\"\n"
            "  origin_change: ['green square']\n  prompt_change: ['green star']\n  prompt_change_mask: ['m1.png']\n",
            SRC, SRC);
    fclose(fp);
    rc = cr_run("search", "--model", model, "--clip", clip, "--config", cr_path("two.yaml"), "--steps", "5", "--plan",
                "--out", out, NULL);
    CHECK(rc == 0 && strstr(cr_out, "one: plan: 1 pair, T=5") && strstr(cr_out, "two: plan: 1 pair, T=5") &&
              strstr(cr_out, "total: 2 cases -> 70 UNet rows, 10 decodes; about "),
          "--plan on two cases: a line each and the total: %s", cr_out);
    CHECK(access(out, F_OK) != 0, "--plan on two cases writes nothing");
    /* a bad strategy is reported as with a run */
    rc = run_search(out, "--plan", "--search=coarse:9");
    cr_expect_error("--plan with a bad --search", rc, "search", "coarse:9");
    /* an input error during a real run stays the only stderr line (the plan waits for the run to start) */
    rc = cr_run("search", "--model", model, "--clip", clip, "--image", img, "--prompt", SRC, "--pair", "horse->cow",
                "--mask", m1, "--steps", "3", "--out", cr_path("bad"), NULL);
    cr_expect_error("phrase not in the prompt", rc, "search", "horse");
}

static void set_cache(const char *dir) {
    if (dir) setenv("XDG_CACHE_HOME", dir, 1);
    else unsetenv("XDG_CACHE_HOME");
}

static void test_cache_modes(void) {
    /* --no-calibrate with an empty cache: counts only */
    char empty[700];
    snprintf(empty, sizeof empty, "%s", cr_path("empty_cache"));
    set_cache(empty);
    const char *out = cr_path("out3");
    int rc = run_search(out, "--no-calibrate", NULL);
    CHECK(rc == 0 && strstr(cr_err, "35 UNet rows") && strstr(cr_err, "no time estimate"),
          "--no-calibrate, nothing cached: counts, no estimate: %s", cr_err);
    char p[800];
    snprintf(p, sizeof p, "%s/oir/calibration.json", empty);
    CHECK(access(p, F_OK) != 0, "--no-calibrate measures and writes nothing");
    cJSON *r = report_of(out), *pl = r ? cJSON_GetObjectItem(r, "plan") : NULL;
    CHECK(pl && cJSON_IsNull(cJSON_GetObjectItem(pl, "estimate_seconds")) &&
              !strcmp(str(cJSON_GetObjectItem(pl, "calibration"), "from"), "none"),
          "report: estimate null, calibration none");
    cJSON_Delete(r);
    setenv("OIR_NO_CALIBRATE", "1", 1);
    rc = run_search(cr_path("out4"), NULL, NULL);
    CHECK(rc == 0 && strstr(cr_err, "no time estimate"), "OIR_NO_CALIBRATE=1 is --no-calibrate: %s", cr_err);
    unsetenv("OIR_NO_CALIBRATE");
    /* the suite's cache (filled by the first test) is used by --no-calibrate */
    set_cache(cache);
    rc = run_search(cr_path("out5"), "--no-calibrate", NULL);
    r = report_of(cr_path("out5"));
    pl = r ? cJSON_GetObjectItem(r, "plan") : NULL;
    CHECK(rc == 0 && pl && num(pl, "estimate_seconds") > 0 && !strcmp(str(cJSON_GetObjectItem(pl, "calibration"), "from"), "cache"),
          "--no-calibrate uses the cached calibration: %s", cr_err);
    cJSON_Delete(r);
    /* a corrupt cache: measured again and rewritten */
    char bad[700];
    snprintf(bad, sizeof bad, "%s", cr_path("bad_cache"));
    snprintf(p, sizeof p, "%s/oir", bad);
    mkdir(bad, 0755);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/oir/calibration.json", bad);
    FILE *fp = fopen(p, "w");
    fputs("{\"entries\": [{\"model\": 3, \"unet_rows\": [-1]}], garbage", fp);
    fclose(fp);
    set_cache(bad);
    rc = run_search(cr_path("out6"), NULL, NULL);
    cJSON *cj = read_json(p);
    CHECK(rc == 0 && strstr(cr_err, "on this machine") && cj && cJSON_GetArraySize(cJSON_GetObjectItem(cj, "entries")) == 1,
          "a corrupt cache is measured again and rewritten: %s", cr_err);
    cJSON_Delete(cj);
    /* an unwritable cache folder is no error */
    snprintf(p, sizeof p, "%s/file", bad);
    fp = fopen(p, "w");
    fclose(fp);
    set_cache(p); /* XDG_CACHE_HOME is a file: the cache folder cannot be made */
    rc = run_search(cr_path("out7"), NULL, NULL);
    CHECK(rc == 0 && strstr(cr_err, "on this machine") && strstr(cr_err, "not cached"),
          "an unwritable cache: the run goes on, with a warning: %s", cr_err);
    set_cache(cache);
}

/* A cached calibration 1000x slower than this machine: a long estimate gets a hint. */
static void test_hint(void) {
    char p[700];
    snprintf(p, sizeof p, "%s/oir/calibration.json", cache);
    cJSON *cj = read_json(p), *e = NULL, *it, *entries = cj ? cJSON_GetObjectItem(cj, "entries") : NULL;
    cJSON_ArrayForEach(it, entries) if (num(it, "threads") == 1) e = it;
    if (!CHECK(e != NULL, "a cached calibration (1 thread) to slow down")) {
        cJSON_Delete(cj);
        return;
    }
    const char *secs[] = {"decode_seconds", "encode_seconds", "text_seconds", "score_seconds", "clip_text_seconds"};
    for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++)
        cJSON_SetNumberValue(cJSON_GetObjectItem(e, secs[i]), num(e, secs[i]) * 1000);
    cJSON *u = cJSON_GetObjectItem(e, "unet_seconds");
    for (int i = 0; i < cJSON_GetArraySize(u); i++)
        cJSON_SetNumberValue(cJSON_GetArrayItem(u, i), /* 20 s a row: a large model */
                             20.0 * cJSON_GetArrayItem(cJSON_GetObjectItem(e, "unet_rows"), i)->valuedouble);
    char *text = cJSON_Print(cj);
    FILE *fp = fopen(p, "w");
    fputs(text, fp);
    fclose(fp);
    cJSON_free(text);
    cJSON_Delete(cj);
    int rc = cr_run("search", "--model", model, "--clip", clip, "--image", img, "--prompt", SRC, "--pair",
                    "red circle->blue circle", "--mask", m1, "--steps", "30", "--threads", "1", "--search",
                    "exhaustive", "--plan", NULL);
    CHECK(rc == 0 && strstr(cr_out, " h ") && strstr(cr_out, "calibrated "), "a long estimate from the cache: %s", cr_out);
    CHECK(strstr(cr_out, "hint: this run takes about") && strstr(cr_out, "--search adaptive (about ") &&
              strstr(cr_out, "--steps 20"),
          "the hint names quicker settings with their estimates: %s", cr_out);
    rc = cr_run("search", "--model", model, "--clip", clip, "--image", img, "--prompt", SRC, "--pair",
                "red circle->blue circle", "--mask", m1, "--steps", "30", "--threads", "1", "--plan", NULL);
    CHECK(rc == 0 && strstr(cr_out, "search adaptive:10") && strstr(cr_out, "--steps 20 (about ") &&
              !strstr(cr_out, "--search adaptive ("),
          "the default (adaptive) run's hint offers fewer steps, not the search it already uses: %s", cr_out);
    /* an inferred mask's rows count in the hint's alternatives as in the run's own plan: the
     * hint's "--steps 10 (about D)" is what a --steps 10 run plans */
    char hinted[64] = "", planned[64] = "";
    rc = cr_run("search", "--model", model, "--clip", clip, "--image", img, "--prompt", SRC, "--pair",
                "red circle->blue circle", "--mask", "auto", "--steps", "30", "--threads", "1", "--plan", NULL);
    const char *h = strstr(cr_out, "--steps 10 (about ");
    if (h) sscanf(h + strlen("--steps 10 (about "), "%63[^)]", hinted);
    rc |= cr_run("search", "--model", model, "--clip", clip, "--image", img, "--prompt", SRC, "--pair",
                 "red circle->blue circle", "--mask", "auto", "--steps", "10", "--threads", "1", "--plan", NULL);
    const char *a = strstr(cr_out, "; about ");
    if (a) sscanf(a + strlen("; about "), "%63[^(]", planned);
    size_t n = strlen(planned);
    if (n && planned[n - 1] == ' ') planned[n - 1] = '\0';
    if (n > 16 && !strcmp(planned + strlen(planned) - 16, " on this machine")) planned[strlen(planned) - 16] = '\0';
    CHECK(rc == 0 && hinted[0] && !strcmp(hinted, planned),
          "with --mask auto the hint's --steps 10 estimate (%s) is the --steps 10 plan's (%s)", hinted, planned);
}

/* On a terminal: the bars. */
static void test_tty(void) {
    const char *out = cr_path("out_tty");
    int fd;
    pid_t pid = forkpty(&fd, NULL, NULL, NULL);
    if (!CHECK(pid >= 0, "forkpty: %s", strerror(errno))) return;
    if (pid == 0) {
        execl(cr_bin, cr_bin, "edit", "--model", model, "--clip", clip, "--image", img, "--prompt", SRC, "--pair",
              "red circle->blue circle", "--mask", m1, "--pair", "green square->green star", "--mask", "8,0,16,16",
              "--steps", "6", "--reassembly-step", "2", "--reinversion-steps", "2", "--threads", "1", "--out", out,
              (char *)NULL);
        _exit(127);
    }
    static char buf[1 << 18];
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
        if (k <= 0) break; /* EIO once the child is gone */
        n += (size_t)k;
    }
    buf[n] = '\0';
    int status = 0;
    waitpid(pid, &status, 0);
    close(fd);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "edit on a tty exits 0");
    CHECK(strstr(buf, "plan: 2 pairs") != NULL, "the plan line on the tty");
    CHECK(strstr(buf, "\rencode") && strstr(buf, "1/1"), "the VAE encode has a bar");
    CHECK(strstr(buf, "\rinversion") && strstr(buf, "\rcandidates (parallel)") && strstr(buf, "\rdenoise"),
          "inversion, candidates and reassembly bars");
    CHECK(strstr(buf, "| run ") && strstr(buf, "%, ETA "), "the run's overall percentage and ETA");
    /* decodes: one bar for the run, 13/13 (2 x 6 candidates + the result), never a 1/1 */
    CHECK(strstr(buf, "\rdecode                 [########################] 13/13") != NULL, "one decode bar to 13/13");
    CHECK(strstr(buf, "\rdecode                 [########################] 1/1") == NULL, "no per-decode 1/1 bars");
    const char *ran = strstr(buf, "ran ");
    CHECK(ran != NULL, "the closing estimate line");
}

int main(int argc, char **argv) {
    (void)argc;
    if (cr_init(argv[0])) {
        CHECK(0, "cannot set up the CLI runner");
        return th_summary();
    }
    snprintf(model, sizeof model, "%s", th_fixture_path("sd/tiny-pipe"));
    snprintf(clip, sizeof clip, "%s", th_fixture_path("sd/clip-tiny"));
    snprintf(cache, sizeof cache, "%s", cr_path("cache"));
    set_cache(cache);
    unsetenv("OIR_NO_CALIBRATE");
    write_inputs();
    test_plan_line_and_report();
    test_plan_only();
    test_cache_modes();
    test_tty();
    test_hint();
    cr_cleanup();
    return th_summary();
}
