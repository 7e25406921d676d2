/* CLIP tokenizer: exact ids against transformers 4.26.1's CLIPTokenizer
 * (fixtures by tools/fixtures/make_tokenizer_fixtures.py).
 *
 * hf-no-ftfy mode (the reference without ftfy): the real SD 1.x vocabulary,
 * a reduced copy of it, a tiny custom one (pad "!", added and additional
 * special tokens) and one with merges out of learning order and nested
 * special tokens; a per-code-point probe digest over planes 0-3 and 14.
 * clip and openai modes (modes.json): every prompt against the slow
 * tokenizer with ftfy, openai CLIP's normalisation and, where it agrees,
 * CLIPTokenizerFast; a per-code-point probe digest with ftfy. The built-in
 * vocabulary against data/clip-tokenizer (vocab.json id for id, encodings);
 * the shipped tiny model's prompts in both modes; bad folders, files and
 * text.
 *
 * The real vocabulary is read from $OIR_CLIP_TOKENIZER or
 * data/clip-tokenizer; when absent the test fails (never skips). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "models/tokenizer.h"
#include "models/unicode.h"

static cJSON *load_fixture_json(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s", th_fixture_path(name));
    FILE *f = fopen(path, "rb");
    if (!CHECK(f != NULL, "fixture %s is missing (run tools/fixtures/make_tokenizer_fixtures.py)",
               path))
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    cJSON *j = NULL;
    if (buf && got == (size_t)n) {
        buf[n] = '\0';
        j = cJSON_Parse(buf);
    }
    free(buf);
    CHECK(j != NULL, "fixture %s: unreadable JSON", path);
    return j;
}

static uint64_t fnv64(uint64_t h, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int b = 0; b < 4; b++) h = (h ^ ((v >> (8 * b)) & 0xFF)) * 0x100000001B3ull;
    }
    return h;
}
#define FNV64_INIT 0xCBF29CE484222325ull

/* The text with non-printable and non-ASCII bytes escaped, for messages. */
static const char *show(const char *s) {
    static char buf[400];
    size_t o = 0;
    for (; *s && o + 8 < sizeof buf; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7F) buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02X", c);
    }
    if (*s) memcpy(buf + o, "...", 4);
    else buf[o] = '\0';
    return buf;
}

static const char *real_dir(void) {
    const char *dir = getenv("OIR_CLIP_TOKENIZER");
    return dir && *dir ? dir : "data/clip-tokenizer";
}

/* Every case of a fixture file: the padded ids, the length before padding,
 * the truncation flag and a digest of all ids before truncation. */
static void check_cases(const tokenizer *tok, const char *fixture) {
    cJSON *root = load_fixture_json(fixture);
    if (!root) return;
    const cJSON *cases = cJSON_GetObjectItem(root, "cases");
    int n_ok = 0, n_cases = cJSON_GetArraySize(cases);
    CHECK(n_cases > 0, "%s: no cases", fixture);
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        int max_len = cJSON_GetObjectItem(c, "max_length")->valueint;
        int want_n = cJSON_GetObjectItem(c, "n_tokens")->valueint;
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        int32_t ids[128];
        int n = -1, trunc = -1;
        oir_error err = {0};
        int rc = tokenizer_encode(tok, text, max_len, ids, &n, &trunc, &err);
        if (!CHECK(rc == OIR_OK, "%s: \"%s\": %s", fixture, show(text), err.message)) continue;
        int bad = -1;
        for (int i = 0; i < max_len; i++)
            if (ids[i] != cJSON_GetArrayItem(want, i)->valueint && bad < 0) bad = i;
        int32_t *all = NULL;
        int n_all = 0;
        tokenizer_tokenize(tok, text, &all, &n_all, &err);
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv64(FNV64_INIT, all, n_all));
        free(all);
        int ok = bad < 0 && n == want_n && trunc == (want_n > max_len) &&
                 strcmp(hex, cJSON_GetObjectItem(c, "all_fnv64")->valuestring) == 0;
        if (!CHECK(ok, "%s: \"%s\" (max_length %d): n_tokens %d want %d, truncated %d, first id "
                   "mismatch at %d, digest of all ids %s", fixture, show(text), max_len, n, want_n,
                   trunc, bad, strcmp(hex, cJSON_GetObjectItem(c, "all_fnv64")->valuestring) ? "differs"
                                                                                           : "ok")) {
            if (bad >= 0) {
                fprintf(stderr, "  got  [%d] = %d \"%s\", want %d \"%s\"\n", bad, ids[bad],
                        tokenizer_token(tok, ids[bad]) ? tokenizer_token(tok, ids[bad]) : "?",
                        cJSON_GetArrayItem(want, bad)->valueint,
                        tokenizer_token(tok, cJSON_GetArrayItem(want, bad)->valueint)
                            ? tokenizer_token(tok, cJSON_GetArrayItem(want, bad)->valueint) : "?");
                const cJSON *toks = cJSON_GetObjectItem(c, "tokens");
                fprintf(stderr, "  reference tokens:");
                for (const cJSON *t = toks ? toks->child : NULL; t; t = t->next)
                    fprintf(stderr, " %s", t->valuestring);
                fprintf(stderr, "\n  got tokens:      ");
                for (int i = 1; i < max_len && ids[i] != tokenizer_eos_id(tok); i++)
                    fprintf(stderr, " %s", tokenizer_token(tok, ids[i]));
                fprintf(stderr, "\n");
            }
            continue;
        }
        n_ok++;
    }
    printf("  %s: %d/%d cases exact\n", fixture, n_ok, n_cases);
    cJSON_Delete(root);
}

/* The code points the fixture script probes (probe_code_points there). */
static int probed(uint32_t cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if ((cp >= 1 && cp < 0x40000) || (cp >= 0xE0000 && cp < 0xF0000)) return 1;
    if (cp >= 0x40000 && cp < 0xE0000) return (cp - 0x40000) % 0x1001 == 0;
    if (cp >= 0xF0000 && cp < 0x110000) return (cp - 0xF0000) % 0x0FFF == 0 || cp == 0x10FFFF;
    return 0;
}

static int put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Ids of "X" ch "Σ " ch "5" ch for every probed code point, digested per block
 * of 4096: covers every Unicode table (control, whitespace, CJK, lower-casing,
 * Final_Sigma, NFD, Mn, punctuation, the pattern's classes) and bpe(). */
static void check_digests(const tokenizer *tok) {
    cJSON *root = load_fixture_json("tokenizer/cases.json");
    if (!root) return;
    const cJSON *blocks = cJSON_GetObjectItem(root, "digests");
    int n_blocks = cJSON_GetArraySize(blocks), n_ok = 0, n_cp = 0;
    CHECK(n_blocks >= 80, "cases.json: %d digest blocks, expected at least 80", n_blocks);
    clock_t t0 = clock();
    for (const cJSON *b = blocks ? blocks->child : NULL; b; b = b->next) {
        uint32_t first = (uint32_t)cJSON_GetObjectItem(b, "first")->valuedouble;
        int count = 0;
        uint64_t h = FNV64_INIT;
        int failed_rc = 0;
        for (uint32_t cp = first; cp < first + 4096; cp++) {
            if (!probed(cp)) continue;
            char text[32], ch[4];
            int k = put_utf8(ch, cp), o = 0;
            text[o++] = 'X';
            memcpy(text + o, ch, (size_t)k), o += k;
            memcpy(text + o, "\xCE\xA3 ", 3), o += 3;
            memcpy(text + o, ch, (size_t)k), o += k;
            text[o++] = '5';
            memcpy(text + o, ch, (size_t)k), o += k;
            text[o] = '\0';
            int32_t *ids = NULL, n = 0, end = -1;
            oir_error err = {0};
            if (tokenizer_tokenize(tok, text, &ids, &n, &err) != OIR_OK) failed_rc = 1;
            h = fnv64(fnv64(h, ids, n), &end, 1);
            free(ids);
            count++;
        }
        n_cp += count;
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        int ok = !failed_rc && count == cJSON_GetObjectItem(b, "count")->valueint &&
                 strcmp(hex, cJSON_GetObjectItem(b, "fnv64")->valuestring) == 0;
        if (CHECK(ok, "probe digest of U+%04X..U+%04X differs (%d code points, want %d)%s", first,
                  first + 4095, count, cJSON_GetObjectItem(b, "count")->valueint,
                  failed_rc ? ", tokenize failed" : ""))
            n_ok++;
    }
    printf("  probe digests: %d/%d blocks exact, %d code points, %.2f s\n", n_ok, n_blocks, n_cp,
           (double)(clock() - t0) / CLOCKS_PER_SEC);
    cJSON_Delete(root);
}

static void check_phrases(const tokenizer *tok) {
    cJSON *root = load_fixture_json("tokenizer/cases.json");
    if (!root) return;
    for (const cJSON *p = cJSON_GetObjectItem(root, "phrases")->child; p; p = p->next) {
        const char *prompt = cJSON_GetObjectItem(p, "prompt")->valuestring;
        const char *phrase = cJSON_GetObjectItem(p, "phrase")->valuestring;
        int pos = -1, len = -1;
        oir_error err = {0};
        int rc = tokenizer_find_phrase(tok, prompt, phrase, 77, &pos, &len, &err);
        CHECK(rc == OIR_OK && pos == cJSON_GetObjectItem(p, "pos")->valueint &&
                  len == cJSON_GetObjectItem(p, "len")->valueint,
              "find_phrase(\"%s\", \"%s\"): rc %d pos %d len %d, want pos %d len %d (%s)",
              show(prompt), phrase, rc, pos, len, cJSON_GetObjectItem(p, "pos")->valueint,
              cJSON_GetObjectItem(p, "len")->valueint, err.message);
    }
    cJSON_Delete(root);
    int pos, len;
    oir_error err = {0};
    CHECK(tokenizer_find_phrase(tok, "a photo of a cat", "dog", 77, &pos, &len, &err) == OIR_E_ARG,
          "find_phrase: an absent phrase is OIR_E_ARG");
    CHECK(tokenizer_find_phrase(tok, "a photo of a cat", " ,", 77, &pos, &len, &err) == OIR_E_ARG,
          "find_phrase: absent punctuation is OIR_E_ARG");
    CHECK(tokenizer_find_phrase(tok, "a photo of a cat", "  ", 77, &pos, &len, &err) == OIR_E_ARG,
          "find_phrase: an empty phrase is OIR_E_ARG");
    CHECK(tokenizer_find_phrase(tok, "one two three four five six", "six", 5, &pos, &len, &err) ==
              OIR_E_ARG, "find_phrase: a truncated phrase is OIR_E_ARG");
}

static void check_real(void) {
    const char *dir = real_dir();
    tokenizer *tok = NULL;
    oir_error err = {0};
    clock_t t0 = clock();
    int rc = tokenizer_load(&tok, dir, &err);
    if (!CHECK(rc == OIR_OK, "the real SD 1.x CLIP vocabulary is required: %s (set "
               "OIR_CLIP_TOKENIZER to a folder with vocab.json and merges.txt)", err.message))
        return;
    tokenizer_set_mode(tok, TOKENIZER_HF_NO_FTFY); /* cases.json: the no-ftfy reference */
    printf("  real vocabulary %s loaded in %.3f s\n", dir, (double)(clock() - t0) / CLOCKS_PER_SEC);
    CHECK(tokenizer_vocab_size(tok) == 49408, "vocab size %d", tokenizer_vocab_size(tok));
    CHECK(tokenizer_bos_id(tok) == 49406 && tokenizer_eos_id(tok) == 49407 &&
              tokenizer_pad_id(tok) == 49407 && tokenizer_unk_id(tok) == 49407,
          "special ids bos %d eos %d pad %d unk %d", tokenizer_bos_id(tok), tokenizer_eos_id(tok),
          tokenizer_pad_id(tok), tokenizer_unk_id(tok));
    CHECK(tokenizer_token(tok, 49406) && strcmp(tokenizer_token(tok, 49406), "<|startoftext|>") == 0,
          "token 49406");
    CHECK(tokenizer_token(tok, 320) && strcmp(tokenizer_token(tok, 320), "a</w>") == 0, "token 320");
    CHECK(!tokenizer_token(tok, 49408) && !tokenizer_token(tok, -1), "out-of-range ids");
    check_cases(tok, "tokenizer/cases.json");
    check_phrases(tok);
    check_digests(tok);

    /* A huge prompt: truncated, end token last, quick. */
    size_t n = TOKENIZER_MAX_TEXT_BYTES;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++) big[i] = (i % 7 == 6) ? ' ' : (char)('a' + (i * 31 % 26));
    big[n] = '\0';
    int32_t ids[77];
    int nt = 0, tr = 0;
    t0 = clock();
    rc = tokenizer_encode(tok, big, 77, ids, &nt, &tr, &err);
    CHECK(rc == OIR_OK && tr == 1 && nt > 77 && ids[0] == 49406 && ids[76] == 49407,
          "1 MiB prompt: rc %d truncated %d n_tokens %d (%s)", rc, tr, nt, err.message);
    memset(big, 'q', n); /* one 1 MiB word: bpe() must not be quadratic */
    rc = tokenizer_encode(tok, big, 77, ids, &nt, &tr, &err);
    CHECK(rc == OIR_OK && tr == 1 && ids[76] == 49407, "1 MiB word: rc %d (%s)", rc, err.message);
    printf("  two 1 MiB prompts in %.2f s\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
    free(big);
    big = malloc(TOKENIZER_MAX_TEXT_BYTES + 2);
    memset(big, 'a', TOKENIZER_MAX_TEXT_BYTES + 1);
    big[TOKENIZER_MAX_TEXT_BYTES + 1] = '\0';
    CHECK(tokenizer_encode(tok, big, 77, ids, &nt, &tr, &err) == OIR_E_ARG,
          "a text over %u bytes is OIR_E_ARG", TOKENIZER_MAX_TEXT_BYTES);
    free(big);

    /* Invalid UTF-8 and bad arguments. */
    static const char *const bad[] = {"caf\xE9", "\xC0\x80", "\xED\xA0\x80 surrogate", "\xE2\x82",
                                      "\xF5\x80\x80\x80", "\x80", "ok \xF0\x9F\x98", "\xF4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.message[0] = '\0';
        rc = tokenizer_encode(tok, bad[i], 77, ids, &nt, &tr, &err);
        CHECK(rc == OIR_E_ARG && strstr(err.message, "UTF-8"), "invalid UTF-8 \"%s\": rc %d (%s)",
              show(bad[i]), rc, err.message);
    }
    CHECK(tokenizer_encode(tok, "a", 2, ids, &nt, &tr, &err) == OIR_E_ARG, "max_len 2 is OIR_E_ARG");
    CHECK(tokenizer_encode(tok, NULL, 77, ids, &nt, &tr, &err) == OIR_E_ARG, "NULL text");
    tokenizer_free(tok);
}

static void check_folder(const char *name, const char *cases, int32_t pad_token_id) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", th_fixture_path(name));
    tokenizer *tok = NULL;
    oir_error err = {0};
    if (!CHECK(tokenizer_load(&tok, dir, &err) == OIR_OK, "%s: %s", dir, err.message)) return;
    tokenizer_set_mode(tok, TOKENIZER_HF_NO_FTFY);
    if (pad_token_id >= 0)
        CHECK(tokenizer_pad_id(tok) == pad_token_id, "%s: pad id %d, want %d", name,
              tokenizer_pad_id(tok), pad_token_id);
    check_cases(tok, cases);
    tokenizer_free(tok);
}

/* ------------------------------------------------------------ bad folders */

#define VOCAB                                                                                   \
    "{\"a\": 0, \"b\": 1, \"a</w>\": 2, \"b</w>\": 3, \"<|startoftext|>\": 4, "                     \
    "\"<|endoftext|>\": 5, \"ab</w>\": 6}"
#define MERGES "#version: 0.2\na b</w>\n"

static const struct bad_case {
    const char *what, *vocab, *merges, *special_map; /* NULL: file absent */
    int rc;
    const char *needle; /* in the message */
} bad_cases[] = {
    {"good tiny folder", VOCAB, MERGES, NULL, OIR_OK, ""},
    {"missing vocab.json", NULL, MERGES, NULL, OIR_E_IO, "vocab.json"},
    {"missing merges.txt", VOCAB, NULL, NULL, OIR_E_IO, "merges.txt"},
    {"truncated vocab.json", "{\"a\": 0, \"b\": ", MERGES, NULL, OIR_E_FORMAT, "vocab.json: not valid JSON"},
    {"vocab.json a list", "[1, 2]", MERGES, NULL, OIR_E_FORMAT, "vocab.json"},
    {"fractional id", "{\"a\": 0.5, \"<|startoftext|>\": 1, \"<|endoftext|>\": 2}", MERGES, NULL, OIR_E_FORMAT, "\"a\""},
    {"string id", "{\"a\": \"0\"}", MERGES, NULL, OIR_E_FORMAT, "\"a\""},
    {"negative id", "{\"a\": -1}", MERGES, NULL, OIR_E_FORMAT, "\"a\""},
    {"vocab.json with invalid UTF-8", "{\"caf\xE9\": 1}", MERGES, NULL, OIR_E_FORMAT, "UTF-8"},
    {"empty vocab", "{}", MERGES, NULL, OIR_E_FORMAT, "empty"},
    {"merges.txt without header", VOCAB, "a b\n", NULL, OIR_E_FORMAT, "#version"},
    {"empty merges.txt", VOCAB, "", NULL, OIR_E_FORMAT, "#version"},
    {"merges.txt line of three", VOCAB, "#version: 0.2\na b c\n", NULL, OIR_E_FORMAT, "line 2"},
    {"merges.txt line of one", VOCAB, "#version: 0.2\na b</w>\nab\n", NULL, OIR_E_FORMAT, "line 3"},
    {"merges.txt with invalid UTF-8", VOCAB, "#version: 0.2\na \xFF\n", NULL, OIR_E_FORMAT, "UTF-8"},
    {"merges.txt with CRLF and blank lines", VOCAB, "\r\n#version: 0.2\r\na b</w>\r\n\r\n", NULL, OIR_OK, ""},
    {"no <|startoftext|>", "{\"a\": 0, \"<|endoftext|>\": 1}", MERGES, NULL, OIR_E_MISSING, "<|startoftext|>"},
    {"pad token not in vocab", VOCAB, MERGES, "{\"pad_token\": \"<pad>\"}", OIR_E_MISSING, "pad_token"},
    {"pad token a number", VOCAB, MERGES, "{\"pad_token\": 7}", OIR_E_FORMAT, "special_tokens_map.json"},
    {"truncated special_tokens_map", VOCAB, MERGES, "{\"pad_token\": ", OIR_E_FORMAT, "special_tokens_map.json"},
    {"pad token as AddedToken dict", VOCAB, MERGES, "{\"pad_token\": {\"content\": \"<|endoftext|>\"}}", OIR_OK, ""},
    {"null eos token", VOCAB, MERGES, "{\"eos_token\": null}", OIR_E_FORMAT, "eos_token"},
};

static char tmp_root[256];

static void write_text(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Writes the case's folder and loads it; a good folder must then encode
 * "ab a" as bos, "ab</w>", "a</w>", eos. */
static void check_bad_case(const struct bad_case *c, int k) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/t%d", tmp_root, k);
    if (!CHECK(mkdir(dir, 0700) == 0, "%s: mkdir %s", c->what, dir)) return;
    if (c->vocab) write_text(dir, "vocab.json", c->vocab);
    if (c->merges) write_text(dir, "merges.txt", c->merges);
    if (c->special_map) write_text(dir, "special_tokens_map.json", c->special_map);
    tokenizer *tok = NULL;
    oir_error err = {0};
    int rc = tokenizer_load(&tok, dir, &err);
    CHECK(rc == c->rc && strstr(err.message, c->needle) && (rc == OIR_OK) == (tok != NULL),
          "%s: rc %d want %d, message \"%s\" should name \"%s\"", c->what, rc, c->rc, err.message,
          c->needle);
    if (tok) {
        int32_t ids[8];
        int n, tr;
        rc = tokenizer_encode(tok, "ab a", 8, ids, &n, &tr, &err);
        CHECK(rc == OIR_OK && ids[0] == 4 && ids[1] == 6 && ids[2] == 2 && ids[3] == 5 && n == 4,
              "%s: \"ab a\" -> %d %d %d %d", c->what, ids[0], ids[1], ids[2], ids[3]);
    }
    tokenizer_free(tok);
    static const char *const files[] = {"vocab.json", "merges.txt", "special_tokens_map.json"};
    for (int i = 0; i < 3; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void check_errors(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_root, sizeof tmp_root, "%s/oir_tok_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!CHECK(mkdtemp(tmp_root) != NULL, "mkdtemp %s", tmp_root)) return;
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) check_bad_case(&bad_cases[i], (int)i);
    tokenizer *tok = NULL;
    oir_error err = {0};
    int rc = tokenizer_load(&tok, "/nonexistent/oir/tokenizer", &err);
    CHECK(rc == OIR_E_IO && tok == NULL && strstr(err.message, "/nonexistent/oir/tokenizer"),
          "missing folder: rc %d (%s)", rc, err.message);
    rc = tokenizer_load(&tok, th_fixture_path("tokenizer/cases.json"), &err);
    CHECK(rc == OIR_E_IO && tok == NULL && strstr(err.message, "not a folder"),
          "a file for a folder: rc %d (%s)", rc, err.message);
    CHECK(rmdir(tmp_root) == 0, "removing %s", tmp_root);
}

/* ---------------------------------------------------------------- modes */

/* An id list of modes.json: an array, or the name of another key of the same
 * prompt holding the same ids. */
static const cJSON *ref_ids(const cJSON *item, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(item, key);
    for (int hops = 0; v && cJSON_IsString(v) && hops < 4; hops++)
        v = cJSON_GetObjectItem(item, v->valuestring);
    return cJSON_IsArray(v) ? v : NULL;
}

/* bos + tokenize(text) + eos in a mode equals want; on a mismatch prints both. */
static int ids_match(tokenizer *tok, tokenizer_mode mode, const char *text, const cJSON *want,
                     const char *what) {
    tokenizer_set_mode(tok, mode);
    int32_t *ids = NULL;
    int n = 0;
    oir_error err = {0};
    int rc = tokenizer_tokenize(tok, text, &ids, &n, &err);
    int nw = cJSON_GetArraySize(want), ok = rc == OIR_OK && nw == n + 2 &&
                                            cJSON_GetArrayItem(want, 0)->valueint == tokenizer_bos_id(tok) &&
                                            cJSON_GetArrayItem(want, nw - 1)->valueint == tokenizer_eos_id(tok);
    for (int i = 0; ok && i < n; i++) ok = ids[i] == cJSON_GetArrayItem(want, i + 1)->valueint;
    if (!CHECK(ok, "%s mode vs %s: \"%s\": rc %d, %d ids, want %d (%s)", tokenizer_mode_name(mode), what,
               show(text), rc, n + 2, nw, err.message)) {
        fprintf(stderr, "  got: ");
        for (int i = 0; i < n && i < 80; i++) fprintf(stderr, " %s", tokenizer_token(tok, ids[i]));
        fprintf(stderr, "\n  want:");
        for (int i = 1; i + 1 < nw && i < 80; i++)
            fprintf(stderr, " %s", tokenizer_token(tok, cJSON_GetArrayItem(want, i)->valueint));
        fprintf(stderr, "\n");
    }
    /* padded to 77: the reference's truncation keeps eos last */
    if (ok) {
        int32_t pad[77];
        int nt = 0, tr = 0;
        rc = tokenizer_encode(tok, text, 77, pad, &nt, &tr, &err);
        int keep = n < 75 ? n : 75;
        ok = rc == OIR_OK && nt == n + 2 && tr == (n > 75) && pad[0] == tokenizer_bos_id(tok) &&
             pad[keep + 1] == tokenizer_eos_id(tok);
        for (int i = 0; ok && i < keep; i++) ok = pad[i + 1] == ids[i];
        for (int i = keep + 2; ok && i < 77; i++) ok = pad[i] == tokenizer_pad_id(tok);
        CHECK(ok, "%s mode: \"%s\" padded/truncated to 77 differs from its tokens",
              tokenizer_mode_name(mode), show(text));
    }
    free(ids);
    return ok;
}

/* Ids of the clip-mode probe "X" ch "Σ " NFD(ch) "5a" ch per code point,
 * digested per block of 4096 (modes.json, ftfy without fix_encoding). */
static void check_clip_digests(tokenizer *tok, const cJSON *root) {
    const cJSON *blocks = cJSON_GetObjectItem(root, "probe_digests");
    int n_blocks = cJSON_GetArraySize(blocks), n_ok = 0, n_cp = 0;
    CHECK(n_blocks >= 80, "modes.json: %d probe blocks, expected at least 80", n_blocks);
    tokenizer_set_mode(tok, TOKENIZER_CLIP);
    clock_t t0 = clock();
    for (const cJSON *b = blocks ? blocks->child : NULL; b; b = b->next) {
        uint32_t first = (uint32_t)cJSON_GetObjectItem(b, "first")->valuedouble;
        int count = 0, failed_rc = 0;
        uint64_t h = FNV64_INIT;
        for (uint32_t cp = first; cp < first + 4096; cp++) {
            if (!probed(cp)) continue;
            char text[128], ch[4];
            uint32_t d[16];
            int k = put_utf8(ch, cp), o = 0, nd = uc_decompose(cp, d);
            text[o++] = 'X';
            memcpy(text + o, ch, (size_t)k), o += k;
            memcpy(text + o, "\xCE\xA3 ", 3), o += 3;
            for (int i = 0; i < nd; i++) o += put_utf8(text + o, d[i]);
            memcpy(text + o, "5a", 2), o += 2;
            memcpy(text + o, ch, (size_t)k), o += k;
            text[o] = '\0';
            int32_t *ids = NULL, n = 0, end = -1;
            oir_error err = {0};
            if (tokenizer_tokenize(tok, text, &ids, &n, &err) != OIR_OK) failed_rc = 1;
            h = fnv64(fnv64(h, ids, n), &end, 1);
            free(ids);
            count++;
        }
        n_cp += count;
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        int ok = !failed_rc && count == cJSON_GetObjectItem(b, "count")->valueint &&
                 strcmp(hex, cJSON_GetObjectItem(b, "fnv64")->valuestring) == 0;
        if (CHECK(ok, "clip-mode probe digest of U+%04X..U+%04X differs (%d code points, want %d)%s",
                  first, first + 4095, count, cJSON_GetObjectItem(b, "count")->valueint,
                  failed_rc ? ", tokenize failed" : ""))
            n_ok++;
    }
    printf("  clip-mode probe digests: %d/%d blocks exact, %d code points (fix_encoding would change "
           "%d of them), %.2f s\n", n_ok, n_blocks, n_cp,
           cJSON_GetArraySize(cJSON_GetObjectItem(root, "probe_fix_encoding_differs")),
           (double)(clock() - t0) / CLOCKS_PER_SEC);
}

/* modes.json: clip against the slow tokenizer with ftfy, openai against openai
 * CLIP's normalisation, hf-no-ftfy against the slow one without ftfy, and
 * CLIPTokenizerFast wherever it agrees with the slow one with ftfy. */
static void check_modes(tokenizer *tok, const char *name) {
    cJSON *root = load_fixture_json("tokenizer/modes.json");
    if (!root) return;
    const cJSON *prompts = cJSON_GetObjectItem(root, "prompts");
    int n = cJSON_GetArraySize(prompts), ok[4] = {0}, fast_same = 0, fast_differs = 0;
    CHECK(n >= 150, "modes.json: %d prompts, expected at least 150", n);
    for (const cJSON *p = prompts ? prompts->child : NULL; p; p = p->next) {
        const char *text = cJSON_GetObjectItem(p, "text")->valuestring;
        const cJSON *clip = ref_ids(p, "clip"), *fast = ref_ids(p, "fast");
        ok[0] += ids_match(tok, TOKENIZER_CLIP, text, clip, "slow+ftfy");
        ok[1] += ids_match(tok, TOKENIZER_OPENAI, text, ref_ids(p, "openai"), "openai");
        ok[2] += ids_match(tok, TOKENIZER_HF_NO_FTFY, text, ref_ids(p, "no_ftfy"), "slow without ftfy");
        char *a = cJSON_PrintUnformatted(clip), *b = cJSON_PrintUnformatted(fast);
        if (a && b && !strcmp(a, b)) {
            fast_same++;
            ok[3] += ids_match(tok, TOKENIZER_CLIP, text, fast, "fast");
        } else {
            int listed = 0;
            for (const cJSON *d = cJSON_GetObjectItem(root, "fast_differs")->child; d; d = d->next)
                listed |= !strcmp(cJSON_GetObjectItem(d, "text")->valuestring, text);
            CHECK(listed, "modes.json: fast differs on \"%s\" but fast_differs does not list it", show(text));
            fast_differs++;
        }
        free(a), free(b);
    }
    int n_listed = cJSON_GetArraySize(cJSON_GetObjectItem(root, "fast_differs"));
    CHECK(fast_differs == n_listed, "modes.json: fast differs on %d prompts, fast_differs lists %d",
          fast_differs, n_listed);
    /* Left out for fix_encoding: exact against ftfy with fix_encoding off. */
    int n_ex = 0, ok_ex = 0;
    for (const cJSON *x = cJSON_GetObjectItem(root, "excluded")->child; x; x = x->next, n_ex++) {
        const char *text = cJSON_GetObjectItem(x, "text")->valuestring;
        ok_ex += ids_match(tok, TOKENIZER_CLIP, text, ref_ids(x, "clip_without_fix_encoding"),
                           "slow+ftfy(fix_encoding=False)") &&
                 ids_match(tok, TOKENIZER_OPENAI, text, ref_ids(x, "openai_without_fix_encoding"),
                           "openai(fix_encoding=False)");
    }
    printf("  modes.json with %s: clip %d/%d, openai %d/%d, hf-no-ftfy %d/%d exact; fast %d/%d where it "
           "agrees with slow+ftfy (differs on %d); %d/%d mojibake prompts exact without fix_encoding\n",
           name, ok[0], n, ok[1], n, ok[2], n, ok[3], fast_same, fast_differs, ok_ex, n_ex);
    if (!strcmp(name, "the folder")) check_clip_digests(tok, root);
    tokenizer_set_mode(tok, TOKENIZER_CLIP);
    cJSON_Delete(root);
}

/* The built-in vocabulary: vocab.json id for id, and the same encodings as the
 * folder (every modes.json prompt in each mode). */
static void check_builtin(tokenizer *folder) {
    tokenizer *tok = NULL;
    oir_error err = {0};
    clock_t t0 = clock();
    if (!CHECK(tokenizer_load_builtin(&tok, &err) == OIR_OK, "tokenizer_load_builtin: %s", err.message))
        return;
    printf("  built-in vocabulary loaded in %.3f s\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
    CHECK(!strcmp(tokenizer_source(tok), TOKENIZER_BUILTIN_NAME), "source \"%s\"", tokenizer_source(tok));
    CHECK(tokenizer_get_mode(tok) == TOKENIZER_CLIP, "built-in default mode %d", tokenizer_get_mode(tok));
    CHECK(tokenizer_vocab_size(tok) == 49408 && tokenizer_bos_id(tok) == 49406 &&
              tokenizer_eos_id(tok) == 49407 && tokenizer_pad_id(tok) == 49407 &&
              tokenizer_unk_id(tok) == 49407,
          "built-in: %d ids, bos %d eos %d pad %d unk %d", tokenizer_vocab_size(tok),
          tokenizer_bos_id(tok), tokenizer_eos_id(tok), tokenizer_pad_id(tok), tokenizer_unk_id(tok));
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.json", real_dir());
    FILE *f = fopen(path, "rb");
    cJSON *vocab = NULL;
    if (CHECK(f != NULL, "%s is missing", path)) {
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)len + 1);
        if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
            buf[len] = '\0';
            vocab = cJSON_Parse(buf);
        }
        free(buf);
        fclose(f);
    }
    int n = 0, same = 0;
    for (const cJSON *e = vocab ? vocab->child : NULL; e; e = e->next, n++) {
        const char *t = tokenizer_token(tok, e->valueint);
        if (t && !strcmp(t, e->string)) same++;
        else if (n - same <= 5)
            CHECK(0, "built-in id %d is \"%s\", vocab.json says \"%s\"", e->valueint, t ? t : "(none)", e->string);
    }
    CHECK(n == 49408 && same == n && !tokenizer_token(tok, 49408),
          "derived vocabulary: %d of vocab.json's %d entries equal, id for id", same, n);
    printf("  derived vocabulary: %d/%d vocab.json entries equal, id for id\n", same, n);
    cJSON_Delete(vocab);
    int tok_same = 1;
    for (int32_t id = 0; id < 49408 && folder; id++) {
        const char *a = tokenizer_token(tok, id), *b = tokenizer_token(folder, id);
        tok_same &= a && b && !strcmp(a, b);
    }
    CHECK(folder && tok_same, "built-in and folder tokenizers: token strings differ");
    check_modes(tok, "the built-in vocabulary");
    tokenizer_free(tok);
}

/* The shipped tiny model was trained on hf-no-ftfy ids; its prompts (every
 * prompt and phrase of bench/scenes and the shapes world's words) give the
 * same ids in both modes. */
static void check_tiny_model(void) {
    cJSON *root = load_fixture_json("tokenizer/tiny_model.json");
    if (!root) return;
    tokenizer *tok = NULL;
    oir_error err = {0};
    if (CHECK(tokenizer_load(&tok, "models/tiny-shapes/tokenizer", &err) == OIR_OK,
              "models/tiny-shapes/tokenizer: %s", err.message)) {
        int n = 0, ok = 0;
        for (const cJSON *p = cJSON_GetObjectItem(root, "prompts")->child; p; p = p->next, n++) {
            const char *text = cJSON_GetObjectItem(p, "text")->valuestring;
            int good = 1;
            for (int m = 0; m < TOKENIZER_N_MODES; m++) {
                tokenizer_set_mode(tok, (tokenizer_mode)m);
                int32_t *ids = NULL, nt = 0;
                if (tokenizer_tokenize(tok, text, &ids, &nt, &err) != OIR_OK) good = 0;
                int32_t bos = tokenizer_bos_id(tok), eos = tokenizer_eos_id(tok);
                char hex[17];
                snprintf(hex, sizeof hex, "%016llx",
                         (unsigned long long)fnv64(fnv64(fnv64(FNV64_INIT, &bos, 1), ids, nt), &eos, 1));
                free(ids);
                good &= !strcmp(hex, cJSON_GetObjectItem(p, "fnv64")->valuestring);
            }
            if (CHECK(good, "tiny model prompt \"%s\": ids differ between modes or from the reference",
                      show(text)))
                ok++;
        }
        CHECK(n >= 100, "tiny_model.json: %d prompts", n);
        printf("  tiny model: %d/%d prompts give the reference ids in every mode\n", ok, n);
    }
    tokenizer_free(tok);
    cJSON_Delete(root);
}

/* Mode names, invalid UTF-8 and a 1 MiB prompt in the clip mode. */
static void check_clip_mode_misc(tokenizer *tok) {
    tokenizer_mode m = TOKENIZER_HF_NO_FTFY;
    oir_error err = {0};
    for (int i = 0; i < TOKENIZER_N_MODES; i++)
        CHECK(tokenizer_mode_parse(tokenizer_mode_name((tokenizer_mode)i), &m, &err) == OIR_OK &&
                  m == (tokenizer_mode)i, "mode %d round trip", i);
    CHECK(!strcmp(tokenizer_mode_name(TOKENIZER_CLIP), "clip") &&
              !strcmp(tokenizer_mode_name(TOKENIZER_OPENAI), "openai") &&
              !strcmp(tokenizer_mode_name(TOKENIZER_HF_NO_FTFY), "hf-no-ftfy"), "mode names");
    CHECK(tokenizer_mode_parse("ftfy", &m, &err) == OIR_E_ARG && strstr(err.message, "hf-no-ftfy"),
          "an unknown mode is OIR_E_ARG naming the choices (%s)", err.message);
    static const char *const bad[] = {"caf\xE9", "\xC0\x80", "\xED\xA0\x80 surrogate", "\xE2\x82",
                                      "&amp; \xF5\x80\x80\x80", "\x80", "ok \xF0\x9F\x98", "\xF4\x90\x80\x80"};
    int32_t ids[77];
    int nt, tr;
    for (int mode = 0; mode < TOKENIZER_N_MODES; mode++) {
        tokenizer_set_mode(tok, (tokenizer_mode)mode);
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            err.message[0] = '\0';
            int rc = tokenizer_encode(tok, bad[i], 77, ids, &nt, &tr, &err);
            CHECK(rc == OIR_E_ARG && strstr(err.message, "UTF-8"), "%s mode: invalid UTF-8 \"%s\": rc %d (%s)",
                  tokenizer_mode_name((tokenizer_mode)mode), show(bad[i]), rc, err.message);
        }
    }
    tokenizer_set_mode(tok, TOKENIZER_CLIP);
    size_t n = TOKENIZER_MAX_TEXT_BYTES;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++) big[i] = (i % 9 == 8) ? ' ' : (i % 97 == 3) ? '&' : (char)('a' + (i * 31 % 26));
    big[n] = '\0';
    clock_t t0 = clock();
    int rc = tokenizer_encode(tok, big, 77, ids, &nt, &tr, &err);
    CHECK(rc == OIR_OK && tr == 1 && ids[0] == 49406 && ids[76] == 49407,
          "clip mode, 1 MiB prompt: rc %d truncated %d (%s)", rc, tr, err.message);
    memset(big, 'q', n);
    rc = tokenizer_encode(tok, big, 77, ids, &nt, &tr, &err);
    CHECK(rc == OIR_OK && tr == 1 && ids[76] == 49407, "clip mode, 1 MiB word: rc %d (%s)", rc, err.message);
    printf("  clip mode: two 1 MiB prompts in %.2f s\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
    free(big);
}

int main(void) {
    check_real();
    tokenizer *real = NULL;
    oir_error err = {0};
    if (CHECK(tokenizer_load(&real, real_dir(), &err) == OIR_OK, "%s: %s", real_dir(), err.message)) {
        CHECK(tokenizer_get_mode(real) == TOKENIZER_CLIP, "the default mode is clip");
        check_modes(real, "the folder");
        check_clip_mode_misc(real);
    }
    check_builtin(real);
    tokenizer_free(real);
    check_tiny_model();
    check_folder("tokenizer/small", "tokenizer/small_cases.json", -1);
    check_folder("tokenizer/tiny", "tokenizer/tiny_cases.json", 0 /* "!" */);
    check_folder("tokenizer/order", "tokenizer/order_cases.json", -1);
    check_errors();
    return th_summary();
}
