/* What the oir command writes (issues 10 and 11): never over an input or a
 * user's file, checked before anything is written; a run's files replaced
 * together (no stale files from an earlier run, a failed re-run leaves the
 * old outputs whole); the output folder rule; YAML case names and limits. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_runner.h"
#include "io/image.h"

static char model[1024], clip[1024];

static void put_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return;
    fputs(text, fp);
    fclose(fp);
}

static int file_is(const char *path, const char *text) {
    static char buf[4096];
    buf[0] = 0;
    cr_read(path, buf, sizeof buf);
    return !strcmp(buf, text);
}

static int exists(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static long file_bytes(const char *dir, const char *name, unsigned char *buf, long cap) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *fp = fopen(p, "rb");
    if (!fp) return -1;
    long n = (long)fread(buf, 1, (size_t)cap, fp);
    fclose(fp);
    return n;
}

static void write_inputs(void) {
    oir_error err = {0};
    image img = {0}, m1 = {0};
    image_alloc(&img, 16, 16, 3, &err);
    image_alloc(&m1, 16, 16, 1, &err);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            float *p = img.data + (y * 16 + x) * 3;
            int left = x >= 2 && x < 7 && y >= 5 && y < 11;
            p[0] = left ? 0.9f : 0.5f;
            p[1] = 0.5f;
            p[2] = 0.5f;
            m1.data[y * 16 + x] = (float)left;
        }
    image_save_png(&img, cr_path("in.png"), &err);
    image_save_png(&m1, cr_path("m1.png"), &err);
    image_free(&img);
    image_free(&m1);
}

/* `oir search` on in.png / m1.png into out with extra arguments. */
static int run_search(const char *out, const char *img_path, const char *extra1, const char *extra2) {
    return cr_run("search", "--model", model, "--clip", clip, "--image", img_path, "--prompt",
                  "a photo of a red circle", "--pair", "red circle->blue circle", "--mask", cr_path("m1.png"),
                  "--steps", "3", "--quiet", "--threads", "1", "--out", out, extra1, extra2, NULL);
}

/* The input check runs before anything is written: an input named
 * input.png inside --out used to get edited.png written beside it first. */
static void test_input_check_first(void) {
    const char *d = cr_path("shared");
    mkdir(d, 0755);
    char img[600];
    snprintf(img, sizeof img, "%s/input.png", d);
    /* copy in.png to shared/input.png */
    unsigned char buf[8192];
    long n = file_bytes(cr_tmp, "in.png", buf, sizeof buf);
    FILE *fp = fopen(img, "wb");
    if (fp) {
        fwrite(buf, 1, (size_t)(n > 0 ? n : 0), fp);
        fclose(fp);
    }
    int rc = run_search(d, img, NULL, NULL);
    cr_expect_error("--out holds the --image", rc, "search", "input.png");
    CHECK(!exists(d, "edited.png"), "nothing was written before the refusal (edited.png exists)");
    unsigned char back[8192];
    CHECK(file_bytes(d, "input.png", back, sizeof back) == n && !memcmp(back, buf, (size_t)n), "input intact");
}

/* generate / reconstruct write one file: an existing file that oir did not
 * write (the user's photo) is refused and kept; oir's own output is
 * replaced; a planted <out>.tmp symlink is not followed. */
static void test_single_file_outputs(void) {
    const char *photo = cr_path("photo.png");
    put_file(photo, "the user's photo");
    int rc = cr_run("generate", "--model", model, "--prompt", "a red circle", "--steps", "1", "--quiet", "--out",
                    photo, NULL);
    cr_expect_error("generate over a user's file", rc, "generate", "not written by oir");
    CHECK(file_is(photo, "the user's photo"), "generate --out photo.png kept the user's photo");
    const char *gen = cr_path("gen.png");
    rc = cr_run("generate", "--model", model, "--prompt", "a red circle", "--steps", "1", "--quiet", "--out", gen,
                NULL);
    CHECK(rc == 0, "generate into a new file: exit %d %s", rc, cr_err);
    rc = cr_run("generate", "--model", model, "--prompt", "a red circle", "--steps", "1", "--quiet", "--seed", "3",
                "--out", gen, NULL);
    CHECK(rc == 0, "generate over its own earlier output: exit %d %s", rc, cr_err);
    rc = cr_run("reconstruct", "--model", model, "--image", gen, "--prompt", "x", "--steps", "1", "--quiet",
                "--out", photo, NULL);
    cr_expect_error("reconstruct over a user's file", rc, "reconstruct", "not written by oir");
    CHECK(file_is(photo, "the user's photo"), "reconstruct kept the user's photo");
    /* a planted temp symlink */
    const char *victim = cr_path("victim.txt");
    put_file(victim, "victim");
    CHECK(symlink(victim, cr_path("g2.png.tmp")) == 0, "symlink: %s", strerror(errno));
    rc = cr_run("generate", "--model", model, "--prompt", "a red circle", "--steps", "1", "--quiet", "--out",
                cr_path("g2.png"), NULL);
    CHECK(rc == 0 && file_is(victim, "victim"), "generate followed g2.png.tmp (exit %d %s)", rc, cr_err);
    /* eval: safetensors outputs are oir's too; a user's file is kept */
    const char *st = cr_path("user.safetensors");
    put_file(st, "user data");
    rc = cr_run("eval", "tokenize", "--model", model, "--prompt", "a cat", "--out", st, NULL);
    cr_expect_error("eval over a user's file", rc, "eval", "not written by oir");
    CHECK(file_is(st, "user data"), "eval kept the user's file");
    const char *st2 = cr_path("ids.safetensors");
    rc = cr_run("eval", "tokenize", "--model", model, "--prompt", "a cat", "--out", st2, NULL);
    int rc2 = cr_run("eval", "tokenize", "--model", model, "--prompt", "a dog", "--out", st2, NULL);
    CHECK(rc == 0 && rc2 == 0, "eval over its own output: exit %d, %d %s", rc, rc2, cr_err);
}

/* A run's files are replaced together: a second run into the same folder
 * leaves none of the first run's files that it did not write again. */
static void test_no_stale_files(void) {
    const char *d = cr_path("runs");
    int rc = run_search(d, cr_path("in.png"), "--save-candidates", NULL);
    CHECK(rc == 0 && exists(d, "pair1_k03.png"), "first run with --save-candidates: exit %d %s", rc, cr_err);
    rc = run_search(d, cr_path("in.png"), NULL, NULL);
    CHECK(rc == 0, "second run: exit %d %s", rc, cr_err);
    CHECK(!exists(d, "pair1_k03.png") && !exists(d, "pair1_k01.png"),
          "stale candidates of the first run left beside the new report");
    CHECK(exists(d, "edited.png") && exists(d, "report.json") && exists(d, ".oir-run"), "new outputs in place");
    /* no temp folders left beside it */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q '^\\.runs\\.'", cr_tmp);
    CHECK(system(cmd) != 0, "a temp folder .runs.* was left beside the output");
}

/* A failed re-run leaves the previous outputs exactly as they were: the
 * second run takes the first run's pair1_mask.png as its mask (an input
 * inside --out); it used to write edited.png, input.png and the sheet
 * before refusing pair1_mask.png, leaving a new edited.png beside the old
 * report.json. */
static void test_failed_rerun(void) {
    const char *d = cr_path("keep");
    int rc = run_search(d, cr_path("in.png"), NULL, NULL);
    CHECK(rc == 0, "first run: exit %d %s", rc, cr_err);
    static unsigned char a[1 << 16], b[1 << 16], ra[1 << 16], rb[1 << 16];
    long na = file_bytes(d, "edited.png", a, sizeof a), nra = file_bytes(d, "report.json", ra, sizeof ra);
    char mask[600];
    snprintf(mask, sizeof mask, "%s/pair1_mask.png", d);
    rc = cr_run("search", "--model", model, "--clip", clip, "--image", cr_path("in.png"), "--prompt",
                "a photo of a red circle", "--pair", "red circle->green star", "--mask", mask, "--steps", "4",
                "--quiet", "--threads", "1", "--out", d, NULL);
    cr_expect_error("re-run whose mask is in --out", rc, "search", "pair1_mask.png");
    long nb = file_bytes(d, "edited.png", b, sizeof b), nrb = file_bytes(d, "report.json", rb, sizeof rb);
    CHECK(na > 0 && na == nb && !memcmp(a, b, (size_t)na), "edited.png unchanged by the failed run");
    CHECK(nra > 0 && nra == nrb && !memcmp(ra, rb, (size_t)nra), "report.json unchanged by the failed run");
}

/* The output folder rule: a folder holding other files is refused and
 * kept; --out naming a file is an error; an empty folder is used. */
static void test_folder_rule(void) {
    const char *d = cr_path("mine");
    mkdir(d, 0755);
    char p[600];
    snprintf(p, sizeof p, "%s/notes.txt", d);
    put_file(p, "my notes");
    int rc = run_search(d, cr_path("in.png"), NULL, NULL);
    cr_expect_error("folder with a user's file", rc, "search", "notes.txt");
    CHECK(file_is(p, "my notes") && !exists(d, "edited.png"), "the user's folder is untouched");
    /* an oir folder into which the user put a file */
    const char *o = cr_path("oirs");
    rc = run_search(o, cr_path("in.png"), NULL, NULL);
    CHECK(rc == 0, "run into a new folder: exit %d %s", rc, cr_err);
    snprintf(p, sizeof p, "%s/keep.txt", o);
    put_file(p, "added later");
    rc = run_search(o, cr_path("in.png"), NULL, NULL);
    cr_expect_error("oir folder with an added file", rc, "search", "keep.txt");
    CHECK(file_is(p, "added later") && exists(o, "edited.png"), "the folder is untouched");
    /* --out names a file */
    const char *f = cr_path("afile.txt");
    put_file(f, "text");
    rc = run_search(f, cr_path("in.png"), NULL, NULL);
    cr_expect_error("--out is a file", rc, "search", "is a file");
    CHECK(file_is(f, "text"), "the file is untouched");
    /* an empty folder is fine */
    const char *e = cr_path("empty");
    mkdir(e, 0755);
    rc = run_search(e, cr_path("in.png"), NULL, NULL);
    CHECK(rc == 0 && exists(e, "edited.png"), "run into an empty folder: exit %d %s", rc, cr_err);
}

static void yaml_case(FILE *fp, const char *name) {
    fprintf(fp,
            "\"%s\":\n"
            "  image_path: in.png\n"
            "  origin_prompt: \"a photo of a red circle\"\n"
            "  origin_change: ['red circle']\n"
            "  prompt_change: ['blue circle']\n"
            "  prompt_change_mask: ['m1.png']\n",
            name);
}

static int run_yaml(const char *yaml, const char *out) {
    return cr_run("search", "--model", model, "--clip", clip, "--config", yaml, "--steps", "1", "--quiet",
                  "--threads", "1", "--out", out, NULL);
}

/* YAML case names become folder names: sanitised (".." cannot write
 * outside --out), collisions after sanitising refused, every case run. */
static void test_yaml_case_names(void) {
    const char *y = cr_path("dots.yaml");
    FILE *fp = fopen(y, "w");
    yaml_case(fp, "..");
    yaml_case(fp, "ok one");
    fclose(fp);
    const char *out = cr_path("ydots");
    int rc = run_yaml(y, out);
    CHECK(rc == 0, "cases '..' and 'ok one': exit %d %s", rc, cr_err);
    CHECK(!exists(cr_tmp, "edited.png") && !exists(cr_tmp, "report.json"), "case '..' wrote outside --out");
    CHECK(exists(out, "__/edited.png") && exists(out, "ok_one/report.json"), "cases in __/ and ok_one/");
    y = cr_path("clash.yaml");
    fp = fopen(y, "w");
    yaml_case(fp, "a b");
    yaml_case(fp, "a_b");
    fclose(fp);
    rc = run_yaml(y, cr_path("yclash"));
    cr_expect_error("'a b' and 'a_b'", rc, "search", "'a b' and 'a_b'");
    CHECK(!exists(cr_tmp, "yclash"), "nothing written for the clashing cases");
    /* 70 cases: every one runs (the runner used to drop those past 64) */
    y = cr_path("many.yaml");
    fp = fopen(y, "w");
    for (int i = 0; i < 70; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%02d", i);
        yaml_case(fp, name);
    }
    fclose(fp);
    out = cr_path("ymany");
    rc = run_yaml(y, out);
    CHECK(rc == 0 && exists(out, "c00/edited.png") && exists(out, "c69/edited.png"),
          "70 cases: exit %d, c69 written: %d %s", rc, exists(out, "c69/edited.png"), cr_err);
}

/* Opens the FIFO's other end after 2 s (in a child) so that a reader
 * blocked on it ends instead of hanging the test; kill the child after. */
static pid_t fifo_unblocker(const char *fifo) {
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 40; i++) {
            usleep(i < 20 ? 100000 : 250000);
            if (i < 20) continue;
            int fd = open(fifo, O_WRONLY | O_NONBLOCK);
            if (fd >= 0) close(fd);
        }
        _exit(0);
    }
    return pid;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A FIFO given as a mask or an image is refused before it is opened (an
 * open blocks until a writer comes). */
static void test_fifo_inputs(void) {
    const char *fifo = cr_path("mask.fifo");
    mkfifo(fifo, 0644);
    pid_t helper = fifo_unblocker(fifo);
    double t0 = now_s();
    int rc = cr_run("search", "--model", model, "--clip", clip, "--image", cr_path("in.png"), "--prompt",
                    "a photo of a red circle", "--pair", "red circle->blue circle", "--mask", fifo, "--steps", "1",
                    "--quiet", "--out", cr_path("fifo_out"), NULL);
    double secs = now_s() - t0;
    kill(helper, SIGKILL);
    waitpid(helper, NULL, 0);
    cr_expect_error("FIFO mask", rc, "search", "not a regular file");
    CHECK(secs < 1.5, "FIFO mask refused after %.1f s: it blocked until the FIFO was opened", secs);
    helper = fifo_unblocker(fifo);
    t0 = now_s();
    rc = cr_run("reconstruct", "--model", model, "--image", fifo, "--prompt", "x", "--out", cr_path("r.png"), NULL);
    secs = now_s() - t0;
    kill(helper, SIGKILL);
    waitpid(helper, NULL, 0);
    cr_expect_error("FIFO image", rc, "reconstruct", "not a regular file");
    CHECK(secs < 1.5, "FIFO image refused after %.1f s: it blocked until the FIFO was opened", secs);
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
    test_input_check_first();
    test_single_file_outputs();
    test_no_stale_files();
    test_failed_rerun();
    test_folder_rule();
    test_yaml_case_names();
    test_fifo_inputs();
    cr_cleanup();
    return th_summary();
}
