/* Data safety of everything oir writes (issue 10): the atomic writer never
 * follows a planted "<path>.tmp" symlink, never leaves a temp file behind. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include <dirent.h>

#include "io/image.h"
#include "io/outfile.h"
#include "io/outputs.h"
#include "io/safetensors.h"

static char dir[128];

static const char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void put_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return;
    fputs(text, fp);
    fclose(fp);
}

static int file_is(const char *path, const char *text) {
    char buf[256] = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    return n == strlen(text) && !memcmp(buf, text, n);
}

/* A symlink "<out>.tmp" -> victim planted in the output folder: the writers
 * must leave the victim alone and still write out. */
static void test_planted_tmp_symlink(void) {
    const char *victim = tpath("victim.png");
    put_file(victim, "PHOTO");
    oir_error err = {0};
    image img = {0};
    image_alloc(&img, 4, 4, 3, &err);
    const char *out = tpath("out.png");
    unlink(tpath("out.png.tmp"));
    CHECK(symlink(victim, tpath("out.png.tmp")) == 0, "symlink: %s", strerror(errno));
    int rc = image_save_png(&img, out, &err);
    CHECK(file_is(victim, "PHOTO"), "image_save_png followed out.png.tmp and overwrote the victim");
    image back = {0};
    CHECK(rc == OIR_OK && image_load(&back, out, &err) == OIR_OK && back.width == 4,
          "image_save_png wrote out.png: rc %d %s", rc, err.message);
    image_free(&back);
    image_free(&img);

    const char *st = tpath("t.safetensors");
    unlink(tpath("t.safetensors.tmp"));
    CHECK(symlink(victim, tpath("t.safetensors.tmp")) == 0, "symlink: %s", strerror(errno));
    st_writer *w = st_writer_new();
    float v[3] = {1, 2, 3};
    int64_t shape[1] = {3};
    st_writer_add_f32(w, "x", v, 1, shape, &err);
    rc = st_writer_save(w, st, &err);
    st_writer_free(w);
    CHECK(file_is(victim, "PHOTO"), "st_writer_save followed t.safetensors.tmp and overwrote the victim");
    st_file *f = NULL;
    CHECK(rc == OIR_OK && st_open(&f, st, &err) == OIR_OK && st_find(f, "x"), "st_writer_save wrote the file: %s",
          err.message);
    st_close(f);
}

static int count_entries(const char *d) {
    DIR *dp = opendir(d);
    int n = 0;
    for (struct dirent *e; dp && (e = readdir(dp));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (dp) closedir(dp);
    return n;
}

/* outfile: a symlink at the destination is replaced (the victim survives);
 * mode 0644 under the umask; a failed commit leaves no temp file. */
static void test_outfile(void) {
    oir_error err = {0};
    const char *victim = tpath("victim2");
    put_file(victim, "PHOTO");
    const char *dst = tpath("link.json");
    CHECK(symlink(victim, dst) == 0, "symlink: %s", strerror(errno));
    CHECK(outfile_write(dst, "{}", 2, &err) == OIR_OK, "outfile_write: %s", err.message);
    struct stat sb;
    CHECK(lstat(dst, &sb) == 0 && S_ISREG(sb.st_mode) && file_is(dst, "{}"), "the symlink was replaced by the file");
    CHECK(file_is(victim, "PHOTO"), "the symlink's target is untouched");
    mode_t old = umask(027);
    CHECK(outfile_write(tpath("m.txt"), "x", 1, &err) == OIR_OK && stat(tpath("m.txt"), &sb) == 0 &&
              (sb.st_mode & 0777) == 0640,
          "mode 0644 & ~umask 027 = 0640, got %o", (unsigned)(sb.st_mode & 0777));
    umask(old);
    /* a folder at the destination: the rename fails, the temp file goes */
    mkdir(tpath("sub"), 0755);
    mkdir(tpath("sub/isdir"), 0755);
    int before = count_entries(tpath("sub"));
    int rc = outfile_write(tpath("sub/isdir"), "x", 1, &err);
    CHECK(rc == OIR_E_IO && strstr(err.message, "isdir"), "writing over a folder fails: rc %d %s", rc, err.message);
    CHECK(count_entries(tpath("sub")) == before, "no temp file left after a failed commit (%d entries, expected %d)",
          count_entries(tpath("sub")), before);
    outfile f;
    CHECK(outfile_open(&f, tpath("sub/aborted.bin"), &err) == OIR_OK, "outfile_open: %s", err.message);
    fputs("partial", f.fp);
    outfile_abort(&f);
    CHECK(count_entries(tpath("sub")) == before && access(tpath("sub/aborted.bin"), F_OK) != 0,
          "outfile_abort leaves nothing");
    outfile_abort(&f); /* released: a second abort is a no-op */
    /* a folder that does not exist */
    rc = outfile_write(tpath("nope/x.png"), "x", 1, &err);
    CHECK(rc == OIR_E_IO && strstr(err.message, "nope/x.png"), "missing folder named: %s", err.message);
    /* two temp names for one path differ */
    char *a = outfile_temp_name(tpath("y.png"), ".tmp"), *b = outfile_temp_name(tpath("y.png"), ".tmp");
    CHECK(a && b && strcmp(a, b) && strstr(a, "/.y.png."), "temp names: %s %s", a, b);
    free(a);
    free(b);
}

/* Single files: replaced only when oir wrote them. */
static void test_check_file(void) {
    oir_error err = {0};
    CHECK(output_check_file(tpath("absent.png"), "--out", &err) == OIR_OK, "a new file is fine");
    image img = {0};
    image_alloc(&img, 2, 2, 1, &err);
    image_save_png(&img, tpath("ours.png"), &err);
    image_free(&img);
    CHECK(output_check_file(tpath("ours.png"), "--out", &err) == OIR_OK, "oir's PNG may be replaced: %s",
          err.message);
    st_writer *w = st_writer_new();
    float v = 1;
    int64_t shape[1] = {1};
    st_writer_add_f32(w, "v", &v, 1, shape, &err);
    st_writer_save(w, tpath("ours.safetensors"), &err);
    st_writer_free(w);
    CHECK(output_check_file(tpath("ours.safetensors"), "--out", &err) == OIR_OK,
          "oir's safetensors may be replaced: %s", err.message);
    put_file(tpath("photo.png"), "\x89PNG\r\n\x1a\n not oir's");
    int rc = output_check_file(tpath("photo.png"), "--out", &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "photo.png") && strstr(err.message, "not written by oir"),
          "a user's PNG is refused: %s", err.message);
    rc = output_check_file(dir, "--out", &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "is a folder"), "a folder is refused: %s", err.message);
    symlink(tpath("ours.png"), tpath("link.png"));
    rc = output_check_file(tpath("link.png"), "--out", &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "symlink"), "a symlink is refused: %s", err.message);
    mkfifo(tpath("fifo.png"), 0644);
    rc = output_check_file(tpath("fifo.png"), "--out", &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "not a regular file"), "a FIFO is refused without blocking: %s",
          err.message);
}

/* Inputs vs outputs: the same file, an input inside an output folder, a
 * hard link of an input in it. */
static void test_check_inputs(void) {
    oir_error err = {0};
    mkdir(tpath("run"), 0755);
    put_file(tpath("run/in.png"), "input");
    output_input in[2] = {{NULL, "--model"}, {tpath("run/in.png"), "--image"}};
    int rc = output_check_inputs(tpath("run/in.png"), "--out", 0, in, 2, &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "is the input given to --image"), "same file: %s", err.message);
    char odd[600];
    snprintf(odd, sizeof odd, "%s/run/../run/./in.png", dir);
    rc = output_check_inputs(odd, "--out", 0, in, 2, &err);
    CHECK(rc == OIR_E_ARG, "same file spelled differently: %s", err.message);
    rc = output_check_inputs(tpath("run"), "--out", 1, in, 2, &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "holds the input given to --image"), "input inside: %s",
          err.message);
    mkdir(tpath("run2"), 0755);
    CHECK(link(tpath("run/in.png"), tpath("run2/copy.png")) == 0, "link: %s", strerror(errno));
    rc = output_check_inputs(tpath("run2"), "--out", 1, in, 2, &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "copy.png"), "hard link inside: %s", err.message);
    rc = output_check_inputs(tpath("run3"), "--out", 1, in, 2, &err);
    CHECK(rc == OIR_OK, "an unrelated new folder: %s", err.message);
    /* a missing input is compared by its resolved path */
    output_input gone[1] = {{tpath("nothere.png"), "--mask"}};
    rc = output_check_inputs(tpath("./nothere.png"), "--out", 0, gone, 1, &err);
    CHECK(rc == OIR_E_ARG, "missing input, same path: %s", err.message);
}

static void write_run(const char *out, const char *const *names, int n, int fail) {
    oir_error err = {0};
    output_dir d;
    if (!CHECK(output_dir_begin(&d, out, "--out", &err) == OIR_OK, "begin %s: %s", out, err.message)) return;
    for (int i = 0; i < n; i++) {
        const char *slash = strchr(names[i], '/');
        if (slash) {
            char sub[256];
            snprintf(sub, sizeof sub, "%.*s", (int)(slash - names[i]), names[i]);
            output_dir_mkdir(&d, sub, &err);
        }
        char *p = output_dir_path(&d, names[i], &err);
        if (p) outfile_write(p, names[i], strlen(names[i]), &err);
        free(p);
    }
    if (fail) {
        output_dir_abort(&d);
        return;
    }
    char note[512];
    CHECK(output_dir_commit(&d, note, sizeof note, &err) == OIR_OK && !note[0], "commit %s: %s %s", out,
          err.message, note);
}

/* Run folders: swapped in whole, stale files gone, a failed run leaves the
 * old one, foreign folders refused, crafted markers not trusted. */
static void test_run_folders(void) {
    oir_error err = {0};
    const char *out = tpath("runs");
    const char *first[] = {"edited.png", "pair2_sheet.png", "c/report.json"};
    write_run(out, first, 3, 0);
    CHECK(file_is(tpath("runs/pair2_sheet.png"), "pair2_sheet.png") && file_is(tpath("runs/c/report.json"), "c/report.json"),
          "first run in place");
    const char *second[] = {"edited.png", "report.json"};
    write_run(out, second, 2, 1); /* fails: nothing changes */
    CHECK(file_is(tpath("runs/pair2_sheet.png"), "pair2_sheet.png") && access(tpath("runs/report.json"), F_OK) != 0,
          "a failed run leaves the old outputs");
    write_run(out, second, 2, 0);
    CHECK(file_is(tpath("runs/report.json"), "report.json") && access(tpath("runs/pair2_sheet.png"), F_OK) != 0 &&
              access(tpath("runs/c"), F_OK) != 0,
          "the second run replaced the first whole (no stale pair2_sheet.png, c/)");
    CHECK(count_entries(dir) > 0 && count_entries(tpath("runs")) == 3, "edited.png, report.json, marker: %d entries",
          count_entries(tpath("runs")));
    /* nothing left beside it */
    DIR *dp = opendir(dir);
    int stray = 0;
    for (struct dirent *e; dp && (e = readdir(dp));) stray += !strncmp(e->d_name, ".runs.", 6);
    if (dp) closedir(dp);
    CHECK(stray == 0, "%d temp folders left beside runs/", stray);
    /* a user's file added to an oir folder: refused, kept */
    put_file(tpath("runs/mine.txt"), "mine");
    output_dir d;
    int rc = output_dir_begin(&d, out, "--out", &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "mine.txt"), "foreign file refused: %s", err.message);
    CHECK(file_is(tpath("runs/mine.txt"), "mine"), "foreign file kept");
    /* a marker that names something outside the folder is not trusted */
    mkdir(tpath("crafted"), 0755);
    put_file(tpath("crafted/.oir-run"), "../victim.txt\nx.png\n");
    put_file(tpath("crafted/x.png"), "x");
    rc = output_dir_begin(&d, tpath("crafted"), "--out", &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "did not write"), "crafted marker refused: %s", err.message);
    /* a file, an empty folder, a missing parent */
    put_file(tpath("plain"), "p");
    rc = output_dir_begin(&d, tpath("plain"), "--out", &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "is a file"), "a file: %s", err.message);
    mkdir(tpath("empty"), 0755);
    const char *one[] = {"a.png"};
    write_run(tpath("empty/"), one, 1, 0);
    CHECK(file_is(tpath("empty/a.png"), "a.png"), "an empty folder is replaced");
    rc = output_dir_begin(&d, tpath("no/such/out"), "--out", &err);
    CHECK(rc == OIR_E_IO && strstr(err.message, "parent"), "missing parent: %s", err.message);
    /* unsafe names inside a run are refused */
    if (output_dir_begin(&d, tpath("names"), "--out", &err) == OIR_OK) {
        char *p1 = output_dir_path(&d, "../escape.png", &err), *p2 = output_dir_path(&d, ".hidden", &err),
             *p3 = output_dir_path(&d, "a//b", &err);
        CHECK(!p1 && !p2 && !p3, "unsafe names refused");
        free(p1);
        free(p2);
        free(p3);
        output_dir_abort(&d);
    }
    CHECK(access(tpath("names"), F_OK) != 0, "aborted run left nothing");
    /* a folder written before markers existed: recognised by oir's file
     * names and a report.json with "oir_version" */
    mkdir(tpath("legacy"), 0755);
    mkdir(tpath("legacy/case_a"), 0755);
    put_file(tpath("legacy/case_a/report.json"), "{\"oir_version\": \"0.1\"}");
    put_file(tpath("legacy/case_a/pair2_k07.png"), "k");
    put_file(tpath("legacy/case_a/edited.png"), "e");
    const char *newer[] = {"edited.png"};
    write_run(tpath("legacy"), newer, 1, 0);
    CHECK(file_is(tpath("legacy/edited.png"), "edited.png") && access(tpath("legacy/case_a"), F_OK) != 0,
          "an unmarked oir folder is replaced");
    mkdir(tpath("lookalike"), 0755);
    put_file(tpath("lookalike/report.json"), "{\"mine\": 1}");
    put_file(tpath("lookalike/edited.png"), "e");
    rc = output_dir_begin(&d, tpath("lookalike"), "--out", &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "did not write"), "oir's names without an oir report: %s",
          err.message);
    put_file(tpath("lookalike/report.json"), "{\"oir_version\": \"0.1\"}");
    put_file(tpath("lookalike/holiday.jpg"), "j");
    rc = output_dir_begin(&d, tpath("lookalike"), "--out", &err);
    CHECK(rc == OIR_E_ARG && strstr(err.message, "holiday.jpg"), "another file beside them: %s", err.message);
    CHECK(file_is(tpath("lookalike/holiday.jpg"), "j"), "kept");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/oir_test_out_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_planted_tmp_symlink();
    test_outfile();
    test_check_file();
    test_check_inputs();
    test_run_folders();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return th_summary();
}
