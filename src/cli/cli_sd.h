/* Pieces `oir generate` and `oir reconstruct` share: the default model, the
 * model's native image size, seeded Gaussian noise, PSNR. */
#ifndef OIR_CLI_SD_H
#define OIR_CLI_SD_H

#include <stddef.h>
#include <stdint.h>

#include "cli/progress.h"
#include "diffusion/sampler.h"
#include "io/image.h"
#include "models/loader.h"

/* The default model when --model is not given: $OIR_MODEL when set and not
 * empty, else the shipped tiny-shapes (oir_models_dir(): found from the
 * program's own folder, so any current folder works). */
const char *cli_default_model(void);

/* --device (or $OIR_DEVICE) for the models cli_load_sd loads next. */
int cli_sd_set_device(const char *flag, oir_error *err);
/* sd_model_load with every component; when the path is missing and was the
 * default, the message says how to choose another (--model, OIR_MODEL).
 * config_dir (--config, may be NULL): diffusers configs for a single-file
 * checkpoint, as sd_load_params.config_dir. A model without a tokenizer
 * (single-file, no config_dir, no $OIR_TOKENIZER, and a text encoder the
 * built-in CLIP vocabulary does not fit) fails, saying so. mode: the
 * tokenizer's (--tokenizer-mode). */
int cli_load_sd(sd_model **out, const char *path, int path_is_default, const char *variant,
                const char *config_dir, tokenizer_mode mode, oir_error *err);

/* The --tokenizer-mode option's help lines, for usage texts. */
#define CLI_TOKENIZER_MODE_HELP                                                                   \
    "  --tokenizer-mode M  prompt text normalisation: clip (default; transformers' CLIPTokenizer\n" \
    "                    with ftfy, as SD 1.x was trained), openai (openai CLIP's, also\n"          \
    "                    unescaping HTML) or hf-no-ftfy (transformers without ftfy)\n"
/* tokenizer_mode_parse for --tokenizer-mode (NULL: clip). */
int cli_tokenizer_mode(const char *name, tokenizer_mode *out, oir_error *err);

/* cli_load_sd, then the image size (the model's native size when *size is 0),
 * cli_check_size, sampler_init for `steps`, and bar (already initialised) as
 * the sampler's progress display. The caller frees *m and s on any return. */
int cli_open_sampler(sampler *s, sd_model **m, const char *model_path, int model_default,
                     const char *variant, const char *config_dir, tokenizer_mode mode, int *size,
                     int steps, progress_bar *bar, oir_error *err);

/* sampler_encode_prompt for the prompt of `flag` ("--prompt"): a prompt past
 * the text encoder's length is cut with a warning on stderr, as diffusers
 * does; errors start with the flag. */
int cli_encode_prompt(sampler *s, const char *flag, const char *prompt, float *ctx, oir_error *err);

/* OIR_E_ARG naming --size unless size is a positive multiple of the VAE x
 * UNet downscale factor. */
int cli_check_size(const sd_model *m, int size, oir_error *err);

/* Standard normal noise, n values, from a counter-based generator:
 * value pair k = Box-Muller(u1, u2) with u1, u2 from
 * splitmix64(seed, 2k) and splitmix64(seed, 2k + 1). Each value depends
 * only on (seed, index), so results are the same on every run and for every
 * thread count; they are NOT torch.randn's values for that seed. */
void cli_gaussian_noise(float *out, size_t n, uint64_t seed);

/* PSNR in dB of two images of the same size, values in [0, 1] (peak 1),
 * over every channel; INFINITY when identical. */
double cli_psnr(const image *a, const image *b);

/* One image (3, S, S) in about [-1, 1] -> an S x S RGB image quantised to
 * 8 bits (round half to even), exactly what image_save_png writes. */
int cli_tensor_to_image(image *out, const float *chw, int size, oir_error *err);

#endif
