/* The authors' YAML schemas (multi_object and single_object) and bad configs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "io/edit_config.h"

static char dir[128];

static const char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

static void test_multi(void) {
    write_file("dog.png", "x");
    const char *p = write_file("multi.yaml",
        "multi_object:\n"
        "  image_path: \"dog.png\"\n"
        "  origin_prompt: \"a dog sitting next to a gift\"\n"
        "  target_prompt: \"a cat sitting next to a cake\"\n"
        "  guided_prompt: [[\"a \", \" sitting next to a gift\"], [\"a dog sitting next to a \", \"\"]]\n"
        "  origin_change: ['dog', 'gift']\n"
        "  prompt_change: ['cat', 'cake']\n"
        "  prompt_change_mask: ['masks/dog.png', '/abs/gift.png']\n"
        "  reassembly_step: 10\n"
        "  reinversion_steps: 5\n"
        "  generation_image_path: \"results/\"\n");
    edit_config cfg;
    oir_error err = {0};
    if (!CHECK(edit_config_load(&cfg, p, &err) == OIR_OK, "multi config: %s", err.message)) return;
    CHECK(cfg.n_cases == 1 && cfg.cases[0].n_pairs == 2, "one case, two pairs");
    edit_case *c = &cfg.cases[0];
    char want_img[256];
    snprintf(want_img, sizeof want_img, "%s/dog.png", dir);
    CHECK(!strcmp(c->image_path, want_img), "image path resolved next to the YAML: %s", c->image_path);
    CHECK(!strcmp(c->pairs[0].mask_path, "masks/dog.png"), "missing relative path kept as given");
    CHECK(!strcmp(c->pairs[1].mask_path, "/abs/gift.png"), "absolute path kept");
    CHECK(!strcmp(c->pairs[0].guided_prompt, "a cat sitting next to a gift"), "guided 1: %s", c->pairs[0].guided_prompt);
    CHECK(!strcmp(c->pairs[1].guided_prompt, "a dog sitting next to a cake"), "guided 2: %s", c->pairs[1].guided_prompt);
    CHECK(!strcmp(c->pairs[1].from, "gift") && !strcmp(c->pairs[1].to, "cake"), "pair 2 words");
    CHECK(c->reassembly_step == 10 && c->reinversion_steps == 5, "steps");
    CHECK(!strcmp(c->target_prompt, "a cat sitting next to a cake"), "target");
    edit_config_free(&cfg);
}

static void test_single(void) {
    const char *p = write_file("single.yaml",
        "single_object:\n"
        "  image_path: \"bird.png\"\n"
        "  origin_prompt: \"a bird perched on a branch\"\n"
        "  target_prompt_list: ['a ', ' perched on a branch']\n"
        "  target_changes: ['duck', 'penguin']\n"
        "  origin_prompt_mask: 'bird_mask.png'\n");
    edit_config cfg;
    oir_error err = {0};
    if (!CHECK(edit_config_load(&cfg, p, &err) == OIR_OK, "single config: %s", err.message)) return;
    CHECK(cfg.n_cases == 2, "one case per target change, got %d", cfg.n_cases);
    CHECK(!strcmp(cfg.cases[1].pairs[0].from, "bird") && !strcmp(cfg.cases[1].pairs[0].to, "penguin"),
          "phrase between prefix and suffix");
    CHECK(!strcmp(cfg.cases[0].target_prompt, "a duck perched on a branch"), "target 1");
    CHECK(cfg.cases[0].reassembly_step == -1, "reassembly absent -> -1");
    edit_config_free(&cfg);
}

static void test_flat_case(void) {
    const char *p = write_file("flat.yaml",
        "image_path: \"dog.png\"\n"
        "origin_prompt: \"a dog and a gift\"\n"
        "guided_prompt:\n  - \"a cat and a gift\"\n"
        "origin_change: [dog]\nprompt_change: [cat]\nprompt_change_mask: [m.png]\n"
        "seed: 0\nsource_scene: {\"background\": \"gray\"}\n");
    edit_config cfg;
    oir_error err = {0};
    if (!CHECK(edit_config_load(&cfg, p, &err) == OIR_OK, "flat config: %s", err.message)) return;
    CHECK(cfg.n_cases == 1 && !strcmp(cfg.cases[0].name, "flat.yaml"), "one case named after the file");
    CHECK(!strcmp(cfg.cases[0].pairs[0].guided_prompt, "a cat and a gift"), "whole guided prompt");
    CHECK(cfg.cases[0].target_prompt == NULL, "no target given");
    edit_config_free(&cfg);
}

static void expect_bad(const char *label, const char *text, const char *needle) {
    const char *p = write_file("bad.yaml", text);
    edit_config cfg;
    oir_error err = {0};
    int rc = edit_config_load(&cfg, p, &err);
    CHECK(rc != OIR_OK && strstr(err.message, needle) && strstr(err.message, "bad.yaml"),
          "%s: expected an error with '%s', got rc=%d '%s'", label, needle, rc, err.message);
}

static void test_bad(void) {
    oir_error err = {0};
    edit_config cfg;
    CHECK(edit_config_load(&cfg, "/nonexistent/x.yaml", &err) == OIR_E_IO, "missing file");
    expect_bad("not yaml", "a: [1, 2\n", "invalid YAML");
    expect_bad("not a mapping", "- 1\n- 2\n", "mapping");
    expect_bad("missing prompt", "c:\n  image_path: x.png\n", "origin_prompt");
    expect_bad("length mismatch",
               "c:\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
               "  prompt_change: [cat, cow]\n  prompt_change_mask: [m.png]\n", "expected 1");
    expect_bad("bad step",
               "c:\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
               "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n  reassembly_step: ten\n",
               "reassembly_step");
    expect_bad("bad guided",
               "c:\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
               "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n  guided_prompt: [[a]]\n",
               "prefix, suffix]");
    expect_bad("single affix mismatch",
               "c:\n  image_path: x\n  origin_prompt: a dog\n  target_prompt_list: ['the ', '']\n"
               "  target_changes: [cat]\n  origin_prompt_mask: m.png\n", "target_prompt_list");
    expect_bad("empty", "{}\n", "no edit cases");
}

/* Case names -> output folder names; collisions and the case limit. */
static void test_case_names(void) {
    char text[4096] = "";
    const char *names[] = {"..", ".hidden", "a/b c", "caf\xc3\xa9", "ok-1.v2"};
    const char *want[] = {"__", "_hidden", "a_b_c", "caf__", "ok-1.v2"};
    for (int i = 0; i < 5; i++) {
        size_t l = strlen(text);
        snprintf(text + l, sizeof text - l,
                 "\"%s\":\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
                 "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n",
                 names[i]);
    }
    const char *p = write_file("names.yaml", text);
    edit_config cfg;
    oir_error err = {0};
    if (CHECK(edit_config_load(&cfg, p, &err) == OIR_OK, "names: %s", err.message)) {
        for (int i = 0; i < 5 && i < cfg.n_cases; i++)
            CHECK(!strcmp(cfg.cases[i].name, names[i]) && !strcmp(cfg.cases[i].dir_name, want[i]),
                  "case '%s' -> folder '%s', expected '%s'", cfg.cases[i].name, cfg.cases[i].dir_name, want[i]);
        edit_config_free(&cfg);
    }
    /* single_object: "case/target" */
    p = write_file("single2.yaml",
                   "s:\n  image_path: x\n  origin_prompt: a bird\n  target_prompt_list: ['a ', '']\n"
                   "  target_changes: ['red duck', '../up']\n  origin_prompt_mask: m.png\n");
    if (CHECK(edit_config_load(&cfg, p, &err) == OIR_OK, "single names: %s", err.message)) {
        CHECK(cfg.n_cases == 2 && !strcmp(cfg.cases[0].dir_name, "s_red_duck") &&
                  !strcmp(cfg.cases[1].dir_name, "s_.._up"),
              "single_object folders: %s %s", cfg.cases[0].dir_name, cfg.n_cases > 1 ? cfg.cases[1].dir_name : "");
        edit_config_free(&cfg);
    }
    /* long names are cut */
    char longname[300];
    memset(longname, 'x', 250);
    longname[250] = 0;
    snprintf(text, sizeof text,
             "%s:\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
             "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n",
             longname);
    p = write_file("long.yaml", text);
    if (CHECK(edit_config_load(&cfg, p, &err) == OIR_OK, "long name: %s", err.message)) {
        CHECK(strlen(cfg.cases[0].dir_name) == EDIT_CONFIG_NAME_MAX, "cut to %d bytes", EDIT_CONFIG_NAME_MAX);
        edit_config_free(&cfg);
    }
    expect_bad("clash",
               "\"a b\":\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
               "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n"
               "a_b:\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
               "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n",
               "'a b' and 'a_b'");
    expect_bad("clash ignoring case",
               "Cat:\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
               "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n"
               "cat:\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
               "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n",
               "'Cat' and 'cat'");
    expect_bad("empty name",
               "\"\":\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
               "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n",
               "empty name");
    /* more cases than the limit: refused, never dropped */
    static char many[40000];
    size_t l = (size_t)snprintf(many, sizeof many,
                                "s:\n  image_path: x\n  origin_prompt: a bird\n  target_prompt_list: ['a ', '']\n"
                                "  origin_prompt_mask: m.png\n  target_changes: [");
    for (int i = 0; i <= EDIT_CONFIG_MAX_CASES; i++)
        l += (size_t)snprintf(many + l, sizeof many - l, "%st%d", i ? ", " : "", i);
    snprintf(many + l, sizeof many - l, "]\n");
    expect_bad("too many cases", many, "more than 1000 edit cases");
}

/* num_ddim_steps / guidance_scale / seed, and keys oir does not use. */
static void test_settings_and_keys(void) {
    const char *p = write_file("settings.yaml",
                               "image_path: x\norigin_prompt: a dog\norigin_change: [dog]\nprompt_change: [cat]\n"
                               "prompt_change_mask: [m.png]\nnum_ddim_steps: 20\nguidance_scale: 5.5\nseed: 9\n"
                               "generation_image_path: out/\nsource_scene: {a: 1}\nobject_masks: [a.png]\n"
                               "num_ddim_step: 3\n");
    edit_config cfg;
    oir_error err = {0};
    if (CHECK(edit_config_load(&cfg, p, &err) == OIR_OK, "settings: %s", err.message)) {
        edit_case *c = &cfg.cases[0];
        CHECK(c->num_ddim_steps == 20 && c->guidance_scale == 5.5f && c->has_seed && c->seed == 9, "settings read");
        CHECK(cfg.n_warnings == 3, "3 warnings (output path, benchmark metadata, unknown), got %d", cfg.n_warnings);
        const char *want[] = {"'generation_image_path' ignored: oir writes its outputs to --out",
                              "keys 'source_scene', 'object_masks' ignored: metadata of the shapes benchmark",
                              "'num_ddim_step' ignored: unknown to oir (misspelled?)"};
        for (int i = 0; i < 3 && i < cfg.n_warnings; i++)
            CHECK(strstr(cfg.warnings[i], want[i]) && strstr(cfg.warnings[i], "settings.yaml"), "warning %d: %s", i,
                  cfg.warnings[i]);
        edit_config_free(&cfg);
    }
    p = write_file("absent.yaml",
                   "image_path: x\norigin_prompt: a dog\norigin_change: [dog]\nprompt_change: [cat]\n"
                   "prompt_change_mask: [m.png]\n");
    if (CHECK(edit_config_load(&cfg, p, &err) == OIR_OK, "absent settings: %s", err.message)) {
        CHECK(cfg.cases[0].num_ddim_steps == -1 && cfg.cases[0].guidance_scale < 0 && !cfg.cases[0].has_seed &&
                  cfg.n_warnings == 0,
              "absent settings are 'not given', no warnings");
        edit_config_free(&cfg);
    }
    p = write_file("single_r.yaml",
                   "s:\n  image_path: x\n  origin_prompt: a bird\n  target_prompt_list: ['a ', '']\n"
                   "  target_changes: [duck]\n  origin_prompt_mask: m.png\n  reassembly_step: 3\n");
    if (CHECK(edit_config_load(&cfg, p, &err) == OIR_OK, "single: %s", err.message)) {
        CHECK(cfg.n_warnings == 1 && strstr(cfg.warnings[0], "no reassembly"), "single_object reassembly_step: %s",
              cfg.n_warnings ? cfg.warnings[0] : "");
        edit_config_free(&cfg);
    }
    expect_bad("steps 0", "c:\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
                          "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n  num_ddim_steps: 0\n",
               "num_ddim_steps");
    expect_bad("guidance nan", "c:\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
                               "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n  guidance_scale: .nan\n",
               "guidance_scale");
    expect_bad("seed -1", "c:\n  image_path: x\n  origin_prompt: a dog\n  origin_change: [dog]\n"
                          "  prompt_change: [cat]\n  prompt_change_mask: [m.png]\n  seed: -1\n",
               "seed");
}

/* edit_config_load in a child process, given `seconds` to answer: a hang
 * or a minutes-long parse is a failed check, never a hung test. Returns the
 * status (-1 on a timeout) and the message in msg. */
static int load_timed(const char *path, int seconds, char *msg, size_t cap) {
    int fds[2];
    msg[0] = 0;
    if (pipe(fds) != 0) return -2;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        edit_config cfg;
        oir_error err = {0};
        int rc = edit_config_load(&cfg, path, &err);
        if (rc == OIR_OK) edit_config_free(&cfg);
        char out[sizeof err.message + 16];
        int n = snprintf(out, sizeof out, "%d %s", rc, err.message);
        if (write(fds[1], out, (size_t)n) < 0) _exit(2);
        _exit(0);
    }
    close(fds[1]);
    struct pollfd pf = {fds[0], POLLIN, 0};
    int ready = poll(&pf, 1, seconds * 1000);
    int rc = -1;
    if (ready > 0) {
        char buf[1200];
        ssize_t n = read(fds[0], buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        char *sp = strchr(buf, ' ');
        rc = atoi(buf);
        snprintf(msg, cap, "%s", sp ? sp + 1 : "");
    } else {
        kill(pid, SIGKILL);
        snprintf(msg, cap, "no answer within %d s", seconds);
    }
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return rc;
}

/* Limits in front of libyaml: file size, nesting depth, regular files only. */
static void test_limits(void) {
    char msg[1100], path[256];
    /* 100k-deep flow sequences: minutes inside libyaml without a depth limit */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 16);
    memcpy(deep, "a: ", 3);
    memset(deep + 3, '[', depth);
    memset(deep + 3 + depth, ']', depth);
    memcpy(deep + 3 + 2 * depth, "\n", 2);
    const char *p = write_file("deep.yaml", deep);
    free(deep);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = load_timed(p, 20, msg, sizeof msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    CHECK(rc == OIR_E_FORMAT && strstr(msg, "nested deeper than") && strstr(msg, "deep.yaml"),
          "100k-deep YAML: rc %d '%s'", rc, msg);
    CHECK(secs < 2.0, "100k-deep YAML refused in %.2f s (limit 2 s)", secs);
    /* 32 levels of block mappings pass the depth check (and fail later as a bad case) */
    char text[4096] = "";
    for (int i = 0; i < EDIT_CONFIG_MAX_DEPTH; i++) {
        size_t l = strlen(text);
        snprintf(text + l, sizeof text - l, "%*sk%d:\n", i, "", i);
    }
    strcat(text, "                                   x\n");
    p = write_file("depth32.yaml", text);
    rc = load_timed(p, 20, msg, sizeof msg);
    CHECK(rc != OIR_OK && !strstr(msg, "nested deeper"), "%d levels are allowed: %s", EDIT_CONFIG_MAX_DEPTH, msg);
    /* over 1 MiB: refused before parsing */
    size_t big = EDIT_CONFIG_MAX_BYTES + 1;
    char *b = malloc(big + 1);
    memset(b, '#', big);
    b[big] = 0;
    p = write_file("big.yaml", b);
    free(b);
    rc = load_timed(p, 20, msg, sizeof msg);
    CHECK(rc == OIR_E_FORMAT && strstr(msg, "larger than") && strstr(msg, "big.yaml"), "2 MiB YAML: rc %d '%s'",
          rc, msg);
    /* a FIFO blocks an fopen forever; a folder is not a file */
    snprintf(path, sizeof path, "%s/fifo.yaml", dir);
    mkfifo(path, 0644);
    rc = load_timed(path, 10, msg, sizeof msg);
    CHECK(rc == OIR_E_IO && strstr(msg, "not a regular file"), "FIFO: rc %d '%s'", rc, msg);
    rc = load_timed(dir, 10, msg, sizeof msg);
    CHECK(rc == OIR_E_IO && strstr(msg, "not a regular file"), "folder: rc %d '%s'", rc, msg);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/oir_test_cfg_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_multi();
    test_single();
    test_flat_case();
    test_bad();
    test_case_names();
    test_limits();
    test_settings_and_keys();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return th_summary();
}
