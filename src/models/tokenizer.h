/* CLIP BPE tokenizer: the ids of transformers 4.26.1's (slow) CLIPTokenizer,
 * exactly, from a Hugging Face tokenizer folder.
 *
 *     tokenizer *tok;
 *     if (tokenizer_load(&tok, "model/tokenizer", &err)) return err.code;
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
 * Text processing is the reference's path when ftfy is not installed (as in the
 * tools venv): special and added tokens are cut out of the raw text first
 * (leftmost, longest); each remaining piece goes through BERT's BasicTokenizer
 * (drop control characters, whitespace -> " ", spaces around CJK ideographs,
 * split on whitespace, str.lower() with Final_Sigma, NFD, drop Mn, split off
 * punctuation), then CLIP's pattern [\p{L}]+ | [\p{N}] | [^\s\p{L}\p{N}]+,
 * byte-level BPE with "</w>" ending a word, and the vocabulary (unknown ->
 * unk). Unicode data comes from unicode_tables.c, generated from the same
 * Python (tools/gen_unicode_tables.py).
 *
 * Thread safety: a loaded tokenizer is read-only; encode from any number of
 * threads at once. Text must be valid UTF-8 (else OIR_E_ARG). */
#ifndef OIR_MODELS_TOKENIZER_H
#define OIR_MODELS_TOKENIZER_H

#include <stdint.h>

#include "oir.h"

/* SD 1.x text encoder length: start + 75 tokens + end. */
#define TOKENIZER_SD_MAX_LEN 77
/* Longest text accepted, in bytes (longer: OIR_E_ARG). */
#define TOKENIZER_MAX_TEXT_BYTES (1u << 20)

typedef struct tokenizer tokenizer;

/* Loads a tokenizer folder. OIR_E_IO: folder or vocab.json/merges.txt missing;
 * OIR_E_FORMAT: malformed file (the message names file, line or entry);
 * OIR_E_MISSING: a special token is not in the vocabulary. */
int tokenizer_load(tokenizer **out, const char *dir, oir_error *err);
void tokenizer_free(tokenizer *tok);

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
