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

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/oir_test_out_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_planted_tmp_symlink();
    test_outfile();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return th_summary();
}
