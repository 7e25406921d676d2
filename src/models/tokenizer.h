/* CLIP BPE tokenizer: the ids of transformers 4.26.1's (slow) CLIPTokenizer,
 * exactly, from a Hugging Face tokenizer folder or from the SD 1.x / openai
 * CLIP vocabulary built into the library.
 *
 *     tokenizer *tok;
 *     if (tokenizer_load(&tok, "model/tokenizer", &err)) return err.code;
 *     // or tokenizer_load_builtin(&tok, &err) for the SD 1.x vocabulary
 *     int32_t ids[77];
 *     int n, truncated;
 *     tokenizer_encode(tok, "a photo of a cat", 77, ids, &n, &truncated, &err);
 *     // ids = <|startoftext|> a photo of a cat <|endoftext|> <pad>...; n = 7
 *     tokenizer_free(tok);
 *
 * The folder holds vocab.json (token -> id) and merges.txt ("#version" line,
 * then one "left right" merge per line, in rank order), as every SD 1.x
 * `tokenizer/` folder and every CLIP folder does; optional
 * tokenizer_config.json and special_tokens_map.json name the special tokens
 * (bos/eos/unk/pad/sep/cls/mask/additional_special_tokens, as a string or
 * {"content": ...}; special_tokens_map.json wins) and optional
 * added_tokens.json adds tokens after the vocabulary. Defaults are CLIP's:
 * bos "<|startoftext|>", eos = unk = pad = "<|endoftext|>". Every special token
 * must be in the vocabulary.
 *
 * The built-in vocabulary is data/clip-tokenizer/merges.txt, compiled into
 * the library (tokenizer_builtin.c); the 49408 ids are derived from it as
 * openai CLIP does: the 256 byte characters of bytes_to_unicode() in its
 * order, the same with "</w>", each merge joined, <|startoftext|> (49406),
 * <|endoftext|> (49407) -- equal, id for id, to data/clip-tokenizer/vocab.json.
 *
 * Text processing. Special and added tokens are cut out of the raw text first
 * (leftmost, longest), as transformers does; each remaining piece then goes
 * through the mode's normalisation, CLIP's pattern
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * (regex module, IGNORECASE), byte-level BPE with "</w>" ending a word (a
 * piece that is exactly <|startoftext|> or <|endoftext|> is that token, as
 * CLIP's bpe cache has it) and the vocabulary (unknown -> unk). The modes:
 *
 *   clip (default)  the reference with ftfy installed, as SD 1.x was trained
 *                   (CompVis' environment installs openai CLIP and so ftfy):
 *                   whitespace_clean(ftfy.fix_text(piece)).lower(). fix_text
 *                   is ftfy 6.1.1's default pipeline on valid UTF-8 (HTML
 *                   entities, C1 controls, Latin ligatures, full/halfwidth
 *                   forms, curly quotes, line breaks, terminal escapes,
 *                   control characters, NFC; text_fix.h) EXCEPT its mojibake
 *                   repair (fix_encoding: "sÃ³" -> "só" and kin), which is not
 *                   implemented: text that ftfy would re-decode tokenizes as
 *                   written. whitespace_clean: runs of \s -> " ", then strip.
 *   openai          openai CLIP's own SimpleTokenizer normalisation:
 *                   html.unescape(html.unescape(fix_text(piece))).strip()
 *                   before whitespace_clean and lower() (Python's html.unescape:
 *                   legacy entities without ";", numeric references).
 *                   transformers' CLIPTokenizer does not have this step.
 *   hf-no-ftfy      the reference without ftfy (e.g. the tools venv before
 *                   ftfy was added; the shipped tiny models were trained on
 *                   its ids): BERT's BasicTokenizer (drop control characters,
 *                   whitespace -> " ", spaces around CJK ideographs, split on
 *                   whitespace, str.lower() with Final_Sigma, NFD, drop Mn,
 *                   split off every punctuation character, so "it's" ->
 *                   it ' s), then the pattern.
 *
 * Unicode data comes from unicode_tables.c and text_fix_tables.c /
 * html_entities.c, generated from the same Python (tools/gen_unicode_tables.py,
 * tools/gen_text_fix_tables.py). Not covered in any mode: ftfy's fix_encoding;
 * in clip mode, a piece of over 1,000,000 code points next to a special token
 * whose edge whitespace would move ftfy's segment boundary.
 *
 * Thread safety: a loaded tokenizer is read-only (set its mode before
 * sharing it); encode from any number of threads at once. Text must be valid
 * UTF-8 (else OIR_E_ARG). */
#ifndef OIR_MODELS_TOKENIZER_H
#define OIR_MODELS_TOKENIZER_H

#include <stdint.h>

#include "oir.h"

/* SD 1.x text encoder length: start + 75 tokens + end. */
#define TOKENIZER_SD_MAX_LEN 77
/* Longest text accepted, in bytes (longer: OIR_E_ARG). */
#define TOKENIZER_MAX_TEXT_BYTES (1u << 20)

typedef struct tokenizer tokenizer;

/* Text normalisation before BPE (see above); values as OIR_TOKENIZER_* in oir.h. */
typedef enum {
    TOKENIZER_CLIP = 0,       /* "clip": transformers with ftfy (default) */
    TOKENIZER_OPENAI = 1,     /* "openai": + html.unescape twice, as openai CLIP */
    TOKENIZER_HF_NO_FTFY = 2, /* "hf-no-ftfy": transformers without ftfy */
    TOKENIZER_N_MODES
} tokenizer_mode;

/* Name of the built-in vocabulary, as tokenizer_source reports it. */
#define TOKENIZER_BUILTIN_NAME "built-in CLIP vocabulary"

/* Loads a tokenizer folder. OIR_E_IO: folder or vocab.json/merges.txt missing;
 * OIR_E_FORMAT: malformed file (the message names file, line or entry);
 * OIR_E_MISSING: a special token is not in the vocabulary. */
int tokenizer_load(tokenizer **out, const char *dir, oir_error *err);
/* The SD 1.x / openai CLIP vocabulary compiled into the library (49408 ids,
 * CLIP's special tokens); for models that carry no tokenizer folder. */
int tokenizer_load_builtin(tokenizer **out, oir_error *err);
void tokenizer_free(tokenizer *tok);

/* The folder it was loaded from, or TOKENIZER_BUILTIN_NAME. */
const char *tokenizer_source(const tokenizer *tok);
/* The mode encoding uses (TOKENIZER_CLIP after loading). Set it before the
 * tokenizer is shared between threads. */
void tokenizer_set_mode(tokenizer *tok, tokenizer_mode mode);
tokenizer_mode tokenizer_get_mode(const tokenizer *tok);
/* "clip", "openai", "hf-no-ftfy"; parse: OIR_E_ARG naming the choices. */
const char *tokenizer_mode_name(tokenizer_mode mode);
int tokenizer_mode_parse(const char *name, tokenizer_mode *out, oir_error *err);

/* Number of ids: vocab.json entries plus added tokens (len(tokenizer)). */
int tokenizer_vocab_size(const tokenizer *tok);
int32_t tokenizer_bos_id(const tokenizer *tok); /* <|startoftext|> */
int32_t tokenizer_eos_id(const tokenizer *tok); /* <|endoftext|>: CLIP pools here */
int32_t tokenizer_pad_id(const tokenizer *tok);
int32_t tokenizer_unk_id(const tokenizer *tok);
/* Token string of an id, as in vocab.json (byte-level, "</w>" ending a
 * word), or NULL for an unknown id. Valid until tokenizer_free. */
const char *tokenizer_token(const tokenizer *tok, int32_t id);

/* As tokenizer(text, padding="max_length", max_length=max_len,
 * truncation=True).input_ids: [bos] + tokens + [eos], truncated to max_len
 * keeping eos last, padded with pad to max_len. ids_out has max_len entries.
 * n_tokens_out (optional): length before truncation and padding, bos and eos
 * included; truncated_out (optional): 1 if tokens were cut. max_len >= 3. */
int tokenizer_encode(const tokenizer *tok, const char *text, int max_len, int32_t *ids_out,
                     int *n_tokens_out, int *truncated_out, oir_error *err);

/* The tokens of text without bos/eos, padding or truncation (as
 * tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))). *ids_out is
 * malloc'd (free it; NULL when *n_out is 0). */
int tokenizer_tokenize(const tokenizer *tok, const char *text, int32_t **ids_out, int *n_out,
                       oir_error *err);

/* Where the tokens of `phrase` first occur in tokenizer_encode(prompt,
 * max_len): *pos_out is the index of the first (>= 1, after bos), *len_out
 * the count. OIR_E_ARG when the phrase has no tokens or is not among the kept
 * (non-truncated) tokens of the prompt. Tokens are matched in isolation, so a
 * phrase tokenized differently inside the prompt (e.g. "cat" within "cats")
 * is not found. */
int tokenizer_find_phrase(const tokenizer *tok, const char *prompt, const char *phrase,
                          int max_len, int *pos_out, int *len_out, oir_error *err);

#endif
