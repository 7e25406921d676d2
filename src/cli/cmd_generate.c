/* oir generate: prompt -> image with DDIM and classifier-free guidance. */
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_sd.h"
#include "cli/progress.h"
#include "diffusion/sampler.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: oir generate --prompt TEXT [--negative TEXT] [--steps 50] [--guidance 7.5]\n"
            "                    [--seed 0] [--size PIX] [--model PATH] [--config DIR]\n"
            "                    [--variant fp16] [--tokenizer-mode M] [--out out.png]\n"
            "                    [--threads N] [--quiet]\n"
            "\n"
            "Generates an image from a prompt: DDIM sampling (eta 0) from Gaussian noise, with\n"
            "classifier-free guidance against the negative prompt, then the VAE decoder.\n"
            "\n"
            "  --prompt TEXT     what to draw (required)\n"
            "  --negative TEXT   the negative branch of guidance (default: the empty prompt \"\")\n"
            "  --steps N         DDIM steps, 1..1000 (default 50)\n"
            "  --guidance G      guidance scale, 0..100 (default 7.5; 1 = no guidance, one UNet\n"
            "                    pass per step)\n"
            "  --seed S          noise seed, a 64-bit unsigned integer (default 0)\n"
            "  --size PIX        image side in pixels (default: the model's native size,\n"
            "                    unet sample_size x VAE factor: 512 for SD 1.x, 64 for\n"
            "                    tiny-shapes); a multiple of the VAE x UNet downscale\n"
            "  --model PATH      diffusers folder or single-file .safetensors checkpoint\n"
            "                    (default: $OIR_MODEL, else %s)\n"
            "  --config DIR      single-file checkpoints: a diffusers folder whose configs (and\n"
            "                    tokenizer) describe it (default: SD 1.x configs sized to the\n"
            "                    checkpoint's shapes; tokenizer from $OIR_TOKENIZER, else\n"
            "                    the built-in CLIP vocabulary when it fits)\n"
            CLI_TOKENIZER_MODE_HELP
            "  --variant fp16    prefer *.fp16.safetensors weights in a diffusers folder\n"
            "  --out FILE.png    where to write the image (default out.png); never one of the\n"
            "                    inputs, and an existing file only when oir wrote it\n"
            "  --threads N       CPU threads (default: $OIR_THREADS, else all cores)\n"
            "  --device D        where the models run: cpu (default), vulkan or vulkan:N ($OIR_DEVICE)\n"
            "  --quiet           no progress bar, no summary line\n"
            "\n"
            "Noise: oir's own counter-based generator (splitmix64 + Box-Muller): the same seed\n"
            "gives the same image on every run and with any thread count, but NOT the image\n"
            "PyTorch/diffusers would give for that seed (their RNG differs).\n",
            cli_default_model());
}

int cmd_generate(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *prompt = NULL, *negative = "", *model_path = NULL, *variant = NULL,
               *config_dir = NULL, *tok_mode = NULL;
    const char *out = "out.png";
    int steps = 50, size = 0, threads = 0, quiet = 0;
    float guidance = 7.5f;
    uint64_t seed = 0;
    const char *device = NULL;
    const cli_opt opts[] = {
        {"--prompt", CLI_STR, &prompt, 0, 0},      {"--negative", CLI_STR, &negative, 0, 0},
        {"--steps", CLI_INT, &steps, 1, 1000},     {"--guidance", CLI_FLOAT, &guidance, 0, 100},
        {"--seed", CLI_U64, &seed, 0, 0},          {"--size", CLI_INT, &size, 8, 8192},
        {"--model", CLI_STR, &model_path, 0, 0},   {"--variant", CLI_STR, &variant, 0, 0},
        {"--config", CLI_STR, &config_dir, 0, 0},  {"--out", CLI_STR, &out, 0, 0},
        {"--tokenizer-mode", CLI_STR, &tok_mode, 0, 0},
        {"--threads", CLI_INT, &threads, 1, 1024}, {"--quiet", CLI_FLAG, &quiet, 0, 0},
        {"--device", CLI_STR, &device, 0, 0},
    };
    oir_error err = {0};
    sd_model *m = NULL;
    sampler s = {0};
    float *cond = NULL, *uncond = NULL, *z = NULL, *pixels = NULL;
    image img = {0};
    int rc, exit_code = 0;
    if ((rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL, &err)))
        goto fail;
    if (!prompt) {
        rc = oir_fail(&err, OIR_E_ARG, "--prompt is required (see oir generate --help)");
        goto fail;
    }
    int model_default = !model_path;
    if (!model_path) model_path = cli_default_model();
    const output_input inputs[] = {
        {model_path, "--model"}, {config_dir, "--config"}, {getenv("OIR_TOKENIZER"), "$OIR_TOKENIZER"}};
    if ((rc = cli_check_png_name(out, &err)) || (rc = cli_check_out_file(out, inputs, 3, &err)))
        goto fail;
    if ((rc = cli_sd_set_device(device, &err))) goto fail;
    cli_set_threads(threads);
    double t0 = clock_wall_s();
    progress_bar bar;
    progress_init(&bar, quiet);
    tokenizer_mode mode;
    if ((rc = cli_tokenizer_mode(tok_mode, &mode, &err))) goto fail;
    if ((rc = cli_open_sampler(&s, &m, model_path, model_default, variant, config_dir, mode, &size, steps,
                               &bar, &err)))
        goto fail;
    size_t ctx_n = (size_t)s.ctx_len * s.ctx_dim;
    cond = malloc(ctx_n * sizeof *cond);
    uncond = malloc(ctx_n * sizeof *uncond);
    z = malloc(s.lat_n * sizeof *z);
    pixels = malloc((size_t)3 * size * size * sizeof *pixels);
    if (!cond || !uncond || !z || !pixels) {
        rc = oir_fail(&err, OIR_E_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = cli_encode_prompt(&s, "--prompt", prompt, cond, &err))) goto fail;
    if (guidance != 1.0f && (rc = cli_encode_prompt(&s, "--negative", negative, uncond, &err))) goto fail;
    cli_gaussian_noise(z, s.lat_n, seed); /* DDIM's init_noise_sigma is 1 */
    if ((rc = sampler_denoise(&s, z, steps, 0, cond, guidance != 1.0f ? uncond : NULL, guidance,
                              &err)) ||
        (rc = sampler_decode(&s, z, 1, pixels, &err)) ||
        (rc = cli_tensor_to_image(&img, pixels, size, &err)) ||
        (rc = image_save_png(&img, out, &err)))
        goto fail;
    if (!quiet)
        printf("wrote %s (%dx%d, %d steps, guidance %g, seed %llu, %.1f s)\n", out, size, size,
               steps, guidance, (unsigned long long)seed, clock_wall_s() - t0);
    goto cleanup;
fail:
    exit_code = cli_report("generate", &err);
cleanup:
    image_free(&img);
    free(cond);
    free(uncond);
    free(z);
    free(pixels);
    sampler_free(&s);
    sd_model_free(m);
    return exit_code;
}
