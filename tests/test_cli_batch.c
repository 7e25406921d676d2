/* oir batch on the shipped tiny model (models/tiny-shapes + tiny-clip) over
 * the 12-case manifest examples/batch/cases.jsonl at the cheapest settings
 * that still run every stage (--steps 4 --size 32): three shards as three
 * concurrent processes (every case done exactly once, outputs identical to
 * single `oir edit` runs), a process killed mid-case and resumed, bad lines
 * reported with their line numbers while the others complete, --summarize,
 * --shard and the Slurm array variables, a folder of YAML cases. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_runner.h"
#include "io/image.h"

#define MANIFEST "examples/batch/cases.jsonl"
#define MODEL "models/tiny-shapes"
#define CLIP "models/tiny-clip"
#define N_CASES 12

static char ids[N_CASES][80];
static char repo[1024];

/* the ids of the 12-case manifest, in order */
static int read_ids(void) {
    FILE *fp = fopen(MANIFEST, "r");
    if (!fp) return 0;
    char line[8192];
    int n = 0;
    while (n < N_CASES && fgets(line, sizeof line, fp)) {
        cJSON *j = cJSON_Parse(line);
        cJSON *id = cJSON_GetObjectItem(j, "id");
        if (cJSON_IsString(id)) snprintf(ids[n++], sizeof ids[0], "%s", id->valuestring);
        cJSON_Delete(j);
    }
    fclose(fp);
    return n;
}

static char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = 0;
    if (len) *len = (size_t)n;
    fclose(fp);
    return b;
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static int exists(const char *dir, const char *id, const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s/%s", dir, id, name);
    return access(p, F_OK) == 0;
}

static cJSON *read_json(const char *dir, const char *id, const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s/%s", dir, id, name);
    char *t = slurp(p, NULL);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    return j;
}

/* "1,3": the chosen steps in a report.json */
static void chosen(const char *dir, const char *id, char *buf, size_t cap) {
    cJSON *r = read_json(dir, id, "report.json");
    size_t at = 0;
    buf[0] = 0;
    cJSON *pairs = cJSON_GetObjectItem(r, "pairs");
    for (int i = 0; i < cJSON_GetArraySize(pairs) && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%d", i ? "," : "",
                               cJSON_GetObjectItem(cJSON_GetArrayItem(pairs, i), "chosen_step")->valueint);
    cJSON_Delete(r);
}

/* Starts oir with args (NULL-terminated) without waiting; stdout and stderr
 * to tag.out / tag.err in the scratch folder. */
static pid_t spawn_oir(const char *tag, const char **args) {
    const char *argv[96];
    int n = 0;
    argv[n++] = cr_bin;
    for (int i = 0; args[i] && n < 95; i++) argv[n++] = args[i];
    argv[n] = NULL;
    char o[600], e[600];
    snprintf(o, sizeof o, "%s/%s.out", cr_tmp, tag);
    snprintf(e, sizeof e, "%s/%s.err", cr_tmp, tag);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, e, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, cr_bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc ? -1 : pid;
}

static int wait_exit(pid_t pid) {
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* The events of a shard log: count of "case" events with status for id. */
static int log_count(const char *dir, const char *log, const char *id, const char *status) {
    char p[1200];
    snprintf(p, sizeof p, "%s/logs/%s", dir, log);
    char *t = slurp(p, NULL);
    int n = 0;
    for (char *line = t, *next; line && *line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : line + strlen(line);
        if (nl) *nl = 0;
        cJSON *ev = cJSON_Parse(line);
        cJSON *k = cJSON_GetObjectItem(ev, "event"), *i = cJSON_GetObjectItem(ev, "id"),
              *s = cJSON_GetObjectItem(ev, "status");
        if (cJSON_IsString(k) && !strcmp(k->valuestring, "case") && cJSON_IsString(i) && !strcmp(i->valuestring, id) &&
            cJSON_IsString(s) && (!status || !strcmp(s->valuestring, status)))
            n++;
        cJSON_Delete(ev);
    }
    free(t);
    return n;
}

/* Temp folders of a run (".<name>.<6>.tmp") in dir. */
static int count_tmp(const char *dir) {
    DIR *dp = opendir(dir);
    int n = 0;
    for (struct dirent *e; dp && (e = readdir(dp));) {
        size_t l = strlen(e->d_name);
        n += e->d_name[0] == '.' && l > 4 && !strcmp(e->d_name + l - 4, ".tmp");
    }
    if (dp) closedir(dp);
    return n;
}

#define RUN_FLAGS "--model", MODEL, "--clip", CLIP, "--steps", "4", "--size", "32", "--threads", "1", "--no-calibrate"

static void test_shards(const char *out) {
    pid_t pid[3];
    for (int s = 0; s < 3; s++) {
        char shard[32], tag[32];
        snprintf(shard, sizeof shard, "%d/3", s);
        snprintf(tag, sizeof tag, "shard%d", s);
        const char *args[] = {"batch", "--manifest", MANIFEST, "--out", out, "--shard", shard, RUN_FLAGS, NULL};
        pid[s] = spawn_oir(tag, args);
    }
    for (int s = 0; s < 3; s++) {
        int rc = wait_exit(pid[s]);
        char p[600];
        snprintf(p, sizeof p, "%s/shard%d.err", cr_tmp, s);
        char *err = slurp(p, NULL);
        CHECK(rc == 0, "shard %d/3 exit %d: %s", s, rc, err ? err : "");
        if (s == 0) CHECK(err && strstr(err, "[4/4]") && strstr(err, "ETA"), "progress over cases with ETA: %s", err);
        free(err);
    }
    int once = 1, right_shard = 1, complete = 1;
    for (int i = 0; i < N_CASES; i++) {
        complete &= exists(out, ids[i], "report.json") && exists(out, ids[i], "edited.png") &&
                    exists(out, ids[i], "pair1_sheet.png") && !exists(out, ids[i], "error.json");
        int total = 0;
        for (int s = 0; s < 3; s++) {
            char log[64];
            snprintf(log, sizeof log, "shard-%d-of-3.jsonl", s);
            int n = log_count(out, log, ids[i], NULL);
            total += n;
            if (n && s != i % 3) right_shard = 0;
        }
        if (total != 1) {
            once = 0;
            fprintf(stderr, "case %s: %d case events in the shard logs\n", ids[i], total);
        }
        once &= log_count(out, "shard-0-of-3.jsonl", ids[i], "done") + log_count(out, "shard-1-of-3.jsonl", ids[i], "done") +
                    log_count(out, "shard-2-of-3.jsonl", ids[i], "done") == 1;
    }
    CHECK(complete, "3 shards: every case folder has report.json, edited.png and its sheet");
    CHECK(once, "3 shards: every case run exactly once (one 'done' event over the three logs)");
    CHECK(right_shard, "case i ran in shard i mod 3");
    CHECK(count_tmp(out) == 0, "no temp folders left");
}

/* `oir edit` with a manifest line's own image, prompt, pairs and masks. */
static void test_same_as_edit(const char *out) {
    FILE *fp = fopen(MANIFEST, "r");
    char line[8192];
    int n = 0, checked = 0;
    while (fp && fgets(line, sizeof line, fp)) {
        int i = n++;
        if (i != 0 && i != 4 && i != 9 && i != 8) continue; /* mask files; a box text; boxes on a wide photo; a pick */
        cJSON *j = cJSON_Parse(line);
        const char *args[64];
        static char img[1024], boxes[16][64], paths[16][1024], pairs[16][256], pick[32];
        int a = 0;
        args[a++] = "edit";
        snprintf(img, sizeof img, "examples/batch/%s", cJSON_GetObjectItem(j, "image")->valuestring);
        args[a++] = "--image", args[a++] = img;
        args[a++] = "--prompt", args[a++] = cJSON_GetObjectItem(j, "prompt")->valuestring;
        cJSON *ps = cJSON_GetObjectItem(j, "pairs");
        for (int k = 0; k < cJSON_GetArraySize(ps); k++) {
            cJSON *p = cJSON_GetArrayItem(ps, k), *m = cJSON_GetObjectItem(p, "mask");
            snprintf(pairs[k], sizeof pairs[k], "%s->%s", cJSON_GetObjectItem(p, "from")->valuestring,
                     cJSON_GetObjectItem(p, "to")->valuestring);
            args[a++] = "--pair", args[a++] = pairs[k];
            args[a++] = "--mask";
            if (cJSON_IsArray(m)) {
                snprintf(boxes[k], sizeof boxes[k], "%d,%d,%d,%d", cJSON_GetArrayItem(m, 0)->valueint,
                         cJSON_GetArrayItem(m, 1)->valueint, cJSON_GetArrayItem(m, 2)->valueint,
                         cJSON_GetArrayItem(m, 3)->valueint);
                args[a++] = boxes[k];
            } else if (strchr(m->valuestring, '/')) {
                snprintf(paths[k], sizeof paths[k], "examples/batch/%s", m->valuestring);
                args[a++] = paths[k];
            } else {
                args[a++] = m->valuestring;
            }
        }
        cJSON *pk = cJSON_GetObjectItem(j, "pick");
        if (pk && pk->child) {
            snprintf(pick, sizeof pick, "%s=%d", pk->child->string, pk->child->valueint);
            args[a++] = "--pick", args[a++] = pick;
        }
        char single[600];
        snprintf(single, sizeof single, "%s/single_%d", cr_tmp, i);
        const char *tail[] = {RUN_FLAGS, "--quiet", "--out", single, NULL};
        for (int k = 0; tail[k]; k++) args[a++] = tail[k];
        args[a] = NULL;
        int rc = wait_exit(spawn_oir("single", args));
        CHECK(rc == 0, "oir edit of case %s exit %d", ids[i], rc);
        char p1[1200], p2[1200], c1[64], c2[64];
        snprintf(p1, sizeof p1, "%s/edited.png", single);
        snprintf(p2, sizeof p2, "%s/%s/edited.png", out, ids[i]);
        CHECK(same_file(p1, p2), "case %s: batch edited.png is byte-identical to oir edit's", ids[i]);
        chosen(single, "", c1, sizeof c1);
        chosen(out, ids[i], c2, sizeof c2);
        CHECK(c1[0] && !strcmp(c1, c2), "case %s: chosen steps %s (oir edit) vs %s (batch)", ids[i], c1, c2);
        cJSON *r = read_json(out, ids[i], "report.json");
        cJSON *from = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), "steps"), "from");
        CHECK(cJSON_IsString(from) && !strcmp(from->valuestring, "flag"), "report.json: --steps from the flag");
        cJSON *pf = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), "pick"), "from");
        if (pk) CHECK(cJSON_IsString(pf) && !strcmp(pf->valuestring, "manifest"), "report.json: the pick from the manifest");
        cJSON_Delete(r);
        cJSON_Delete(j);
        checked++;
    }
    if (fp) fclose(fp);
    CHECK(checked == 4, "compared %d cases with oir edit", checked);
}

/* Killed (SIGKILL) in the middle of a case, then --resume. */
static void test_kill_resume(const char *ref) {
    const char *out = cr_path("killed");
    const char *args[] = {"batch", "--manifest", MANIFEST, "--out", out, RUN_FLAGS, "--quiet", NULL};
    pid_t pid = spawn_oir("killed", args);
    int finished = 0, tmp = 0, status = 0, exited = 0;
    struct timespec t0, now, nap = {0, 2000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) { /* until two cases are finished and a third is being written */
        finished = 0;
        for (int i = 0; i < N_CASES; i++) finished += exists(out, ids[i], "report.json");
        tmp = count_tmp(out);
        if (finished >= 2 && tmp > 0) break;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = 1;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 120) break;
        nanosleep(&nap, NULL);
    }
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    CHECK(!exited && finished >= 2 && finished < N_CASES && tmp > 0,
          "killed mid-case: %d cases finished, %d temp folders (exited early: %d)", finished, tmp, exited);
    /* nothing half-written looks finished: every case folder is complete */
    int complete = 1, folders = 0;
    DIR *dp = opendir(out);
    for (struct dirent *e; dp && (e = readdir(dp));) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "logs")) continue;
        folders++;
        complete &= exists(out, e->d_name, "report.json") && exists(out, e->d_name, "edited.png") &&
                    exists(out, e->d_name, ".oir-run");
    }
    if (dp) closedir(dp);
    CHECK(complete && folders == finished, "after the kill: %d case folders, all complete (%d finished)", folders,
          finished);
    /* again without --resume: refused, nothing run */
    int rc = cr_run("batch", "--manifest", MANIFEST, "--out", out, RUN_FLAGS, NULL);
    cr_expect_error("a second run without --resume", rc, "batch", "--resume");
    rc = cr_run("batch", "--manifest", MANIFEST, "--out", out, "--resume", "--overwrite", NULL);
    cr_expect_error("--resume with --overwrite", rc, "batch", "--overwrite");
    /* resumed: the rest is run, the finished ones skipped */
    rc = cr_run("batch", "--manifest", MANIFEST, "--out", out, RUN_FLAGS, "--resume", NULL);
    CHECK(rc == 0, "--resume exit %d: %s", rc, cr_err);
    int all = 1, identical = 1, once = 1, skipped = 0;
    for (int i = 0; i < N_CASES; i++) {
        all &= exists(out, ids[i], "report.json");
        char a[1200], b[1200];
        snprintf(a, sizeof a, "%s/%s/edited.png", out, ids[i]);
        snprintf(b, sizeof b, "%s/%s/edited.png", ref, ids[i]);
        identical &= same_file(a, b);
        once &= log_count(out, "shard-0-of-1.jsonl", ids[i], "done") == 1;
        skipped += log_count(out, "shard-0-of-1.jsonl", ids[i], "skipped");
    }
    CHECK(all, "after --resume every case is finished");
    CHECK(once, "each case done exactly once over the killed and the resumed run");
    CHECK(skipped == finished, "--resume skipped the %d finished cases (%d skipped)", finished, skipped);
    CHECK(identical, "after kill + resume every edited.png equals the 3-shard run's");
    CHECK(count_tmp(out) == 0, "the killed run's temp folder was removed on resume (%d left)", count_tmp(out));
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

static void test_bad_lines(void) {
    char demo[1200], mask[1200], text[20000];
    snprintf(demo, sizeof demo, "%s/examples/shapes/demo.png", repo);
    snprintf(mask, sizeof mask, "%s/examples/shapes/demo_mask0.png", repo);
    const char *P = "a red circle on the left and a blue triangle on the right on a gray background";
    snprintf(text, sizeof text,
             "{\"id\": \"good1\", \"image\": \"%s\", \"prompt\": \"%s\", \"pairs\": [{\"from\": \"red circle\", \"to\": \"green square\", \"mask\": \"%s\"}]}\n"
             "{\"id\": \"noimage\", \"image\": \"missing.png\", \"prompt\": \"%s\", \"pairs\": [{\"from\": \"red circle\", \"to\": \"green square\"}]}\n"
             "\n"
             "{\"image\": \"%s\", \"prompt\": \"%s\", \"pairs\": [{\"from\": \"red circle\", \"to\": \"green square\", \"mask\": \"no_mask.png\"}]}\n"
             "{\"id\": \"bigmask\", \"image\": \"%s\", \"prompt\": \"%s\", \"pairs\": [{\"from\": \"red circle\", \"to\": \"green square\", \"mask\": \"m_wrong.png\"}]}\n"
             "{\"id\": \"colour\", \"image\": \"%s\", \"prompt\": \"%s\", \"colour\": \"red\", \"pairs\": [{\"from\": \"red circle\", \"to\": \"green square\"}]}\n"
             "{\"id\": \"broken\", \"image\": \"%s\", \"prompt\": \n"
             "{\"id\": \"good2\", \"image\": \"%s\", \"prompt\": \"%s\", \"pairs\": [{\"from\": \"blue triangle\", \"to\": \"yellow star\", \"mask\": [42, 23, 60, 39]}]}\n",
             demo, P, mask, P, demo, P, demo, P, demo, P, demo, demo, P);
    write_file(cr_path("bad.jsonl"), text);
    /* a mask of the wrong size (the photo is 64x64) */
    oir_error ie = {0};
    image m = {0};
    CHECK(image_alloc(&m, 20, 16, 1, &ie) == OIR_OK && image_save_png(&m, cr_path("m_wrong.png"), &ie) == OIR_OK,
          "a wrong-size mask");
    image_free(&m);
    const char *out = cr_path("bad_out");
    int rc = cr_run("batch", "--manifest", cr_path("bad.jsonl"), "--out", out, RUN_FLAGS, NULL);
    CHECK(rc == 1, "a batch with bad lines exits 1 (got %d)", rc);
    const struct {
        const char *id, *needle;
        int line;
    } bad[] = {{"noimage", "bad.jsonl:2: case 'noimage': image", 2},
               {"line0004", "bad.jsonl:4: case 'line0004': pairs[1].mask", 4},
               {"bigmask", "bad.jsonl:5: case 'bigmask': mask", 5},
               {"colour", "bad.jsonl:6: unknown field 'colour'", 6},
               {"line0007", "bad.jsonl:7: not valid JSON", 7}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(strstr(cr_err, bad[i].needle) != NULL, "stderr names line %d: \"%s\" in %s", bad[i].line, bad[i].needle,
              cr_err);
        cJSON *e = read_json(out, bad[i].id, "error.json");
        cJSON *line = cJSON_GetObjectItem(e, "line"), *msg = cJSON_GetObjectItem(e, "error");
        CHECK(cJSON_IsNumber(line) && line->valueint == bad[i].line && cJSON_IsString(msg) &&
                  strstr(msg->valuestring, bad[i].needle),
              "%s/error.json records line %d and the error", bad[i].id, bad[i].line);
        CHECK(!exists(out, bad[i].id, "report.json"), "%s: no report.json", bad[i].id);
        cJSON_Delete(e);
    }
    CHECK(exists(out, "good1", "report.json") && exists(out, "good2", "report.json"), "the good lines complete");
    CHECK(strstr(cr_err, "m_wrong.png") != NULL, "the wrong-size mask is named");
    /* --summarize: the manifest given, plus one case that never ran */
    snprintf(text + strlen(text), sizeof text - strlen(text),
             "{\"id\": \"never\", \"image\": \"%s\", \"prompt\": \"%s\", \"pairs\": [{\"from\": \"red circle\", \"to\": \"green square\"}]}\n",
             demo, P);
    write_file(cr_path("bad_more.jsonl"), text);
    rc = cr_run("batch", "--summarize", out, "--manifest", cr_path("bad_more.jsonl"), NULL);
    CHECK(rc == 1, "--summarize with failed and missing cases exits 1 (got %d)", rc);
    CHECK(strstr(cr_out, "2 done, 5 failed, 1 missing") && strstr(cr_out, "missing: never"),
          "--summarize counts and lists the missing case: %s", cr_out);
    char p[1200];
    snprintf(p, sizeof p, "%s/summary.json", out);
    char *t = slurp(p, NULL);
    cJSON *s = t ? cJSON_Parse(t) : NULL;
    free(t);
    cJSON *counts = cJSON_GetObjectItem(s, "counts"), *cases = cJSON_GetObjectItem(s, "cases");
    CHECK(counts && cJSON_GetObjectItem(counts, "done")->valueint == 2 &&
              cJSON_GetObjectItem(counts, "failed")->valueint == 5 && cJSON_GetObjectItem(counts, "missing")->valueint == 1,
          "summary.json counts");
    CHECK(cJSON_GetArraySize(cases) == 8, "summary.json: 8 cases (%d)", cJSON_GetArraySize(cases));
    cJSON *g1 = cJSON_GetArrayItem(cases, 0);
    cJSON *pp = cJSON_GetArrayItem(cJSON_GetObjectItem(g1, "pairs"), 0);
    char c1[32];
    chosen(out, "good1", c1, sizeof c1);
    CHECK(pp && cJSON_GetObjectItem(pp, "chosen_step")->valueint == atoi(c1) &&
              cJSON_IsNumber(cJSON_GetObjectItem(pp, "total")) && cJSON_GetObjectItem(g1, "seconds"),
          "summary.json: good1's chosen step, score and times from its report.json");
    cJSON_Delete(s);
    snprintf(p, sizeof p, "%s/summary.csv", out);
    t = slurp(p, NULL);
    int lines = 0;
    for (char *q = t; q && *q; q++) lines += *q == '\n';
    CHECK(t && lines == 9 && strstr(t, "\nnever,") && strstr(t, "missing") && strstr(t, "bad.jsonl:6: unknown field 'colour'") &&
              strstr(t, "pick\"\n"),
          "summary.csv: a header and 8 rows, the errors quoted (%d lines)", lines);
    free(t);
    snprintf(p, sizeof p, "%s/summary.md", out);
    t = slurp(p, NULL);
    CHECK(t && strstr(t, "| good2 | done |") && strstr(t, "Missing") && strstr(t, "never"), "summary.md: the table");
    free(t);
    /* a summary file that is not oir's is never replaced */
    snprintf(p, sizeof p, "%s/summary.md", out);
    write_file(p, "my notes\n");
    rc = cr_run("batch", "--summarize", out, "--manifest", cr_path("bad_more.jsonl"), NULL);
    cr_expect_error("a summary.md of one's own", rc, "batch", "summary.md");
    t = slurp(p, NULL);
    CHECK(t && !strcmp(t, "my notes\n"), "summary.md of one's own kept");
    free(t);
    /* repeated ids fail the whole manifest before anything runs */
    snprintf(text, sizeof text,
             "{\"id\": \"a\", \"image\": \"x.png\", \"prompt\": \"p\", \"pairs\": [{\"from\": \"p\", \"to\": \"q\"}]}\n"
             "{\"id\": \"A\", \"image\": \"x.png\", \"prompt\": \"p\", \"pairs\": [{\"from\": \"p\", \"to\": \"q\"}]}\n");
    write_file(cr_path("dup.jsonl"), text);
    rc = cr_run("batch", "--manifest", cr_path("dup.jsonl"), "--out", cr_path("dup_out"), RUN_FLAGS, NULL);
    cr_expect_error("repeated ids", rc, "batch", "dup.jsonl:2");
    CHECK(access(cr_path("dup_out"), F_OK) != 0, "nothing written for a manifest with repeated ids");
}

static void test_shard_args(void) {
    const char *badv[] = {"3/3", "0/0", "a/b", "1/", "/3", "-1/3", "1/3/4", "2"};
    for (size_t i = 0; i < sizeof badv / sizeof badv[0]; i++) {
        int rc = cr_run("batch", "--manifest", MANIFEST, "--out", cr_path("never"), "--shard", badv[i], NULL);
        char what[64];
        snprintf(what, sizeof what, "--shard %s", badv[i]);
        cr_expect_error(what, rc, "batch", "--shard");
    }
    int rc = cr_run("batch", "--manifest", MANIFEST, "--out", cr_path("never"), "--shard", "3/3", NULL);
    CHECK(strstr(cr_err, "counted from 0") && strstr(cr_err, "2/3"), "--shard 3/3 says shards count from 0: %s", cr_err);
    CHECK(access(cr_path("never"), F_OK) != 0, "nothing written for a bad --shard");
    /* the Slurm array's variables: task 6 of an array 5-7 is shard 1/3 */
    setenv("SLURM_ARRAY_TASK_ID", "6", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "5", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "3", 1);
    rc = cr_run("batch", "--manifest", MANIFEST, "--plan", RUN_FLAGS, NULL);
    int ok = rc == 0;
    for (int i = 0; i < N_CASES; i++) {
        char who[1000];
        snprintf(who, sizeof who, "\n%s: plan", ids[i]);
        int shown = strstr(cr_out, who) != NULL || (!strncmp(cr_out, who + 1, strlen(who + 1)));
        ok &= shown == (i % 3 == 1);
    }
    CHECK(ok && strstr(cr_out, "total: 4 cases"), "SLURM_ARRAY_TASK_ID 6 (min 5, count 3): the cases of shard 1/3 (exit %d): %s",
          rc, cr_out);
    /* --shard wins over the variables */
    rc = cr_run("batch", "--manifest", MANIFEST, "--plan", "--shard", "0/1", RUN_FLAGS, NULL);
    CHECK(rc == 0 && strstr(cr_out, "total: 12 cases"), "--shard 0/1 wins over Slurm's variables");
    setenv("SLURM_ARRAY_TASK_ID", "9", 1);
    rc = cr_run("batch", "--manifest", MANIFEST, "--plan", RUN_FLAGS, NULL);
    cr_expect_error("a task outside the array", rc, "batch", "SLURM");
    unsetenv("SLURM_ARRAY_TASK_ID");
    unsetenv("SLURM_ARRAY_TASK_MIN");
    unsetenv("SLURM_ARRAY_TASK_COUNT");
    rc = cr_run("batch", "--summarize", cr_path("nowhere"), NULL);
    cr_expect_error("--summarize of a missing folder", rc, "batch", "nowhere");
    rc = cr_run("batch", "--summarize", cr_path("nowhere"), "--steps", "3", NULL);
    cr_expect_error("--summarize with a run flag", rc, "batch", "--steps");
    rc = cr_run("batch", "--out", cr_path("never"), NULL);
    cr_expect_error("no --manifest", rc, "batch", "--manifest");
}

/* A folder of the authors' YAML cases as the manifest. */
static void test_yaml_folder(void) {
    char text[8192];
    mkdir(cr_path("yaml"), 0755);
    snprintf(text, sizeof text,
             "circle:\n"
             "  image_path: %s/examples/shapes/demo.png\n"
             "  origin_prompt: a red circle on the left and a blue triangle on the right on a gray background\n"
             "  origin_change: ['red circle']\n"
             "  prompt_change: ['green square']\n"
             "  prompt_change_mask: ['%s/examples/shapes/demo_mask0.png']\n"
             "  num_ddim_steps: 3\n"
             "triangle:\n"
             "  image_path: %s/examples/shapes/demo.png\n"
             "  origin_prompt: a red circle on the left and a blue triangle on the right on a gray background\n"
             "  origin_change: ['blue triangle']\n"
             "  prompt_change: ['yellow star']\n"
             "  prompt_change_mask: ['%s/examples/shapes/demo_mask1.png']\n",
             repo, repo, repo, repo);
    write_file(cr_path("yaml/a.yaml"), text);
    write_file(cr_path("yaml/logs.yml"), "not: [valid\n"); /* named as the log folder */
    const char *out = cr_path("yaml_out");
    int rc = cr_run("batch", "--manifest", cr_path("yaml"), "--out", out, "--model", MODEL, "--clip", CLIP, "--size",
                    "32", "--threads", "1", "--no-calibrate", "--quiet", NULL);
    CHECK(rc == 1, "YAML folder with one broken file: exit 1 (%d): %s", rc, cr_err);
    CHECK(exists(out, "circle", "report.json") && exists(out, "triangle", "report.json"), "a folder per YAML case");
    CHECK(exists(out, "file-logs", "error.json") && strstr(cr_err, "logs.yml"),
          "the broken file is one failed case named after it (file-logs: logs is the log folder)");
    cJSON *r = read_json(out, "circle", "report.json");
    cJSON *st = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "settings"), "steps");
    CHECK(st && cJSON_GetObjectItem(st, "value")->valueint == 3 && !strcmp(cJSON_GetObjectItem(st, "from")->valuestring, "yaml"),
          "the YAML case's num_ddim_steps used");
    cJSON_Delete(r);
}

int main(int argc, char **argv) {
    (void)argc;
    if (cr_init(argv[0]) || !getcwd(repo, sizeof repo)) {
        CHECK(0, "cannot set up the CLI runner");
        return th_summary();
    }
    if (!CHECK(read_ids() == N_CASES, "%s has %d cases", MANIFEST, N_CASES)) return th_summary();
    const char *out = cr_path("shards");
    test_shards(out);
    test_same_as_edit(out);
    test_kill_resume(out);
    test_bad_lines();
    test_shard_args();
    test_yaml_folder();
    cr_cleanup();
    return th_summary();
}
