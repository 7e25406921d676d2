#include "cli/cli_sd.h"

#include "cli/cli_device.h"

#include "core/noise.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


const char *cli_default_model(void) {
    const char *env = getenv("OIR_MODEL");
    return env && env[0] ? env : oir_context_default_params().model_path;
}

int cli_tokenizer_mode(const char *name, tokenizer_mode *out, oir_error *err) {
    *out = TOKENIZER_CLIP;
    if (!name) return OIR_OK;
    int rc = tokenizer_mode_parse(name, out, err);
    if (rc) oir_error_prefix(err, "--tokenizer-mode");
    return rc;
}

static const char *sd_device; /* cli_sd_set_device */

int cli_sd_set_device(const char *flag, oir_error *err) { return cli_device(flag, &sd_device, err); }

int cli_load_sd(sd_model **out, const char *path, int path_is_default, const char *variant,
                const char *config_dir, tokenizer_mode mode, oir_error *err) {
    struct stat sb;
    if (path_is_default && stat(path, &sb) != 0)
        return oir_fail(err, OIR_E_IO,
                        "%s: no such model (the default%s); give --model PATH (a diffusers folder "
                        "or a .safetensors checkpoint) or set OIR_MODEL",
                        path,
                        getenv("OIR_MODEL") && getenv("OIR_MODEL")[0] ? ", from OIR_MODEL" : "");
    sd_load_params p = sd_load_default_params();
    p.variant = variant;
    p.config_dir = config_dir;
    p.tokenizer_mode = mode;
    p.device = sd_device;
    int rc = sd_model_load(out, path, &p, err);
    if (rc == OIR_OK && !(*out)->tokenizer) {
        sd_model_free(*out);
        *out = NULL;
        return oir_fail(err, OIR_E_MISSING,
                        "%s: no tokenizer (a single-file checkpoint has none, and the built-in CLIP "
                        "vocabulary does not fit its text encoder): give --config DIR (a diffusers "
                        "folder with tokenizer/) or set OIR_TOKENIZER to a tokenizer folder",
                        path);
    }
    return rc;
}

int cli_check_size(const sd_model *m, int size, oir_error *err) {
    int f = vae_downscale(&m->vae->cfg) * (1 << (m->unet->cfg.n_blocks - 1));
    if (size <= 0 || size % f)
        return oir_fail(err, OIR_E_ARG,
                        "--size %d: not a multiple of %d (the VAE downscale x the UNet's); try %d",
                        size, f, size < f ? f : size / f * f);
    return OIR_OK;
}

int cli_open_sampler(sampler *s, sd_model **m, const char *model_path, int model_default,
                     const char *variant, const char *config_dir, tokenizer_mode mode, int *size,
                     int steps, progress_bar *bar, oir_error *err) {
    int rc = cli_load_sd(m, model_path, model_default, variant, config_dir, mode, err);
    if (!rc && !*size) rc = sd_model_native_size(*m, config_dir, size, err);
    if (!rc) rc = cli_check_size(*m, *size, err);
    if (!rc) rc = sampler_init(s, *m, *size, steps, 0, err);
    if (!rc) {
        s->progress = progress_update;
        s->progress_user = bar;
    }
    return rc;
}

/* The library's generator (core/noise.h): the CLI's noise and the mask
 * inference's draws are one stream definition. */
void cli_gaussian_noise(float *out, size_t n, uint64_t seed) { noise_gaussian(out, n, seed); }

double cli_psnr(const image *a, const image *b) {
    size_t n = (size_t)a->width * a->height * a->channels;
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a->data[i] - b->data[i];
        se += d * d;
    }
    if (se == 0) return INFINITY;
    return 10.0 * log10(1.0 / (se / (double)n));
}

int cli_tensor_to_image(image *out, const float *chw, int size, oir_error *err) {
    int rc = image_from_tensor(out, chw, 3, size, size, err);
    if (!rc) image_quantize(out, 0);
    return rc;
}

int cli_encode_prompt(sampler *s, const char *flag, const char *prompt, float *ctx, oir_error *err) {
    s->truncate_prompts = 1;
    int rc = sampler_encode_prompt(s, prompt, ctx, err);
    if (rc) return oir_error_prefix(err, "%s", flag);
    if (s->prompt_tokens_dropped)
        fprintf(stderr, "oir: warning: %s is %d tokens too long for the text encoder (%d): cut, as diffusers does\n",
                flag, s->prompt_tokens_dropped, s->ctx_len);
    return OIR_OK;
}
