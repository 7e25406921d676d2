/* Fuzz target: the CLIP tokenizer.
 *
 * Two kinds of input, told apart by NUL bytes (which no text or tokenizer
 * file may hold):
 *   - no NUL: the input is prompt text for the shipped tokenizer
 *     (models/tiny-shapes/tokenizer, or $OIR_FUZZ_TOKENIZER), loaded once:
 *     tokenizer_encode (max_len 77 and 3), tokenizer_tokenize, and
 *     tokenizer_find_phrase with the text split at its first newline into
 *     prompt and phrase. Covers UTF-8 checks, special-token cutting, the
 *     BasicTokenizer text rules (Unicode tables), the CLIP pattern and BPE.
 *   - with NULs: a tokenizer folder, parts separated by NUL:
 *     vocab.json \0 merges.txt [\0 special_tokens_map.json [\0 added_tokens.json
 *     [\0 tokenizer_config.json [\0 text]]]]
 *     (absent parts: no such file); tokenizer_load, then the text (or a fixed
 *     prompt) through the same calls on the loaded tokenizer.
 * Invariants: encode gives bos first, eos last of the kept tokens, pad after,
 * every id a known token, and as many tokens as tokenize. */
#include "fuzz_util.h"

#include "models/tokenizer.h"

#define FUZZ_TOK_LEN 77

static tokenizer *fuzz_tok_shipped;

static void fuzz_tok_free_shipped(void) {
    tokenizer_free(fuzz_tok_shipped);
    fuzz_tok_shipped = NULL;
}

static tokenizer *fuzz_tok_get_shipped(void) {
    if (fuzz_tok_shipped) return fuzz_tok_shipped;
    const char *dir = getenv("OIR_FUZZ_TOKENIZER");
    if (!dir || !*dir) dir = "models/tiny-shapes/tokenizer";
    oir_error err = {0};
    if (tokenizer_load(&fuzz_tok_shipped, dir, &err) != OIR_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s (run from the repository root or set OIR_FUZZ_TOKENIZER)\n",
                err.message);
        abort();
    }
    atexit(fuzz_tok_free_shipped); /* so LeakSanitizer sees only per-input leaks */
    return fuzz_tok_shipped;
}

static void fuzz_tok_encode(const tokenizer *tok, const char *text, int max_len) {
    oir_error err = {0};
    int32_t ids[FUZZ_TOK_LEN];
    int n = -1, truncated = -1;
    if (FUZZ_CALL("tokenizer_encode", tokenizer_encode(tok, text, max_len, ids, &n, &truncated, &err),
                  &err))
        return;
    FUZZ_ASSERT(n >= 2 && (truncated == 0 || truncated == 1));
    FUZZ_ASSERT(truncated == (n > max_len));
    FUZZ_ASSERT(ids[0] == tokenizer_bos_id(tok));
    int kept = n < max_len ? n : max_len;
    FUZZ_ASSERT(ids[kept - 1] == tokenizer_eos_id(tok));
    for (int i = kept; i < max_len; i++) FUZZ_ASSERT(ids[i] == tokenizer_pad_id(tok));
    for (int i = 0; i < max_len; i++) FUZZ_ASSERT(ids[i] >= 0 && tokenizer_token(tok, ids[i]));
    int32_t *toks = NULL;
    int nt = -1;
    if (max_len == FUZZ_TOK_LEN && tokenizer_tokenize(tok, text, &toks, &nt, &err) == OIR_OK) {
        FUZZ_ASSERT(nt == n - 2);
        FUZZ_ASSERT((nt == 0) == (toks == NULL));
        for (int i = 0; i < nt && i + 1 < kept - 1; i++) FUZZ_ASSERT(toks[i] == ids[i + 1]);
        free(toks);
    }
}

static void fuzz_tok_text(const tokenizer *tok, char *text) {
    oir_error err = {0};
    fuzz_tok_encode(tok, text, FUZZ_TOK_LEN);
    fuzz_tok_encode(tok, text, 3);
    char *nl = strchr(text, '\n');
    if (nl) {
        *nl = '\0';
        int pos = -1, len = -1;
        if (tokenizer_find_phrase(tok, text, nl + 1, FUZZ_TOK_LEN, &pos, &len, &err) == OIR_OK)
            FUZZ_ASSERT(pos >= 1 && len >= 1 && pos + len <= FUZZ_TOK_LEN - 1);
        *nl = '\n';
    }
}

static void fuzz_tok_folder(const uint8_t *data, size_t size) {
    static const char *const files[] = {"tok/vocab.json", "tok/merges.txt",
                                        "tok/special_tokens_map.json", "tok/added_tokens.json",
                                        "tok/tokenizer_config.json"};
    const int nfiles = (int)(sizeof files / sizeof *files);
    const uint8_t *p = data, *end = data + size;
    int i = 0;
    for (; i < nfiles; i++) {
        const uint8_t *z = memchr(p, '\0', (size_t)(end - p));
        const uint8_t *stop = z ? z : end;
        fuzz_write(files[i], p, (size_t)(stop - p));
        p = z ? z + 1 : end;
        if (!z) {
            i++;
            break;
        }
    }
    for (int k = i; k < nfiles; k++) fuzz_unlink(files[k]);
    /* what follows the last file is text (NULs cut it short) */
    char *text = p < end ? fuzz_cstr(p, (size_t)(end - p)) : NULL;
    oir_error err = {0};
    tokenizer *tok = NULL;
    if (FUZZ_CALL("tokenizer_load", tokenizer_load(&tok, fuzz_subdir("tok"), &err), &err) == OIR_OK) {
        int vocab = tokenizer_vocab_size(tok);
        FUZZ_ASSERT(vocab >= 1);
        for (int32_t id = -1; id <= vocab && id < 4096; id++) tokenizer_token(tok, id);
        fuzz_tok_text(tok, text ? text : (char[]){"a photo of a cat\ncat"});
        tokenizer_free(tok);
    }
    free(text);
}

static int fuzz_tokenizer_one(const uint8_t *data, size_t size) {
    if (size && memchr(data, '\0', size)) {
        fuzz_tok_folder(data, size);
        return 0;
    }
    char *text = fuzz_cstr(data, size);
    fuzz_tok_text(fuzz_tok_get_shipped(), text);
    free(text);
    return 0;
}

FUZZ_ENTRY(fuzz_tokenizer_one)
