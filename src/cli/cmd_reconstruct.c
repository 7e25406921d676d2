/* oir reconstruct: image -> DDIM inversion -> denoising with the source
 * prompt -> image, with the PSNR against the input (how much the inversion
 * loses before any edit). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_sd.h"
#include "cli/progress.h"
#include "diffusion/sampler.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: oir reconstruct --image IN --prompt TEXT [--steps 50] [--guidance 1]\n"
            "                       [--negative TEXT] [--size PIX] [--model PATH]\n"
            "                       [--config DIR] [--variant fp16] [--tokenizer-mode M]\n"
            "                       [--out out.png]\n"
            "                       [--threads N] [--quiet]\n"
            "\n"
            "Inverts an image and denoises it back (docs/DESIGN.md 2.1): the image is center-cropped\n"
            "to a square and resized (Pillow bicubic, as the authors' load_512), encoded with the\n"
            "VAE (posterior mean x scaling factor), inverted for all DDIM steps conditioned on\n"
            "the prompt without guidance, then denoised for all steps with the same prompt and\n"
            "decoded. Prints the PSNR of the result against the cropped/resized input, and of\n"
            "the VAE alone (encode -> decode) for reference: the difference is what inversion\n"
            "costs.\n"
            "\n"
            "  --image FILE      PNG or JPEG input (required)\n"
            "  --prompt TEXT     the prompt that describes the image (required)\n"
            "  --steps N         DDIM steps, 1..1000 (default 50)\n"
            "  --guidance G      guidance while denoising (default 1: no guidance, the exact\n"
            "                    mirror of the inversion; other values amplify the prompt and\n"
            "                    usually lower the PSNR). Inversion always uses guidance 1.\n"
            "  --negative TEXT   negative prompt when --guidance is not 1 (default \"\")\n"
            "  --size PIX        working size (default: the model's native size)\n"
            "  --model PATH      diffusers folder or single-file .safetensors checkpoint\n"
            "                    (default: $OIR_MODEL, else %s)\n"
            "  --config DIR      single-file checkpoints: a diffusers folder whose configs (and\n"
            "                    tokenizer) describe it (default: SD 1.x configs sized to the\n"
            "                    checkpoint's shapes; tokenizer from $OIR_TOKENIZER, else\n"
            "                    the built-in CLIP vocabulary when it fits)\n"
            CLI_TOKENIZER_MODE_HELP
            "  --variant fp16    prefer *.fp16.safetensors weights\n"
            "  --out FILE.png    the reconstruction (default out.png); never the input, and an\n"
            "                    existing file only when oir wrote it\n"
            "  --threads N       CPU threads (default: $OIR_THREADS, else all cores)\n"
            "  --device D        where the models run: cpu (default), vulkan or vulkan:N ($OIR_DEVICE)\n"
            "  --quiet           no progress bar and no \"wrote\" line (the PSNR lines remain)\n"
            "\n"
            "PSNR = 10 log10(1 / MSE) over all pixels and channels of the 8-bit images\n"
            "(values in [0, 1]), as written to disk.\n",
            cli_default_model());
}

static void print_psnr(const char *what, double db) {
    if (isinf(db))
        printf("PSNR %s: inf dB (identical)\n", what);
    else
        printf("PSNR %s: %.2f dB\n", what, db);
}

int cmd_reconstruct(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *in = NULL, *prompt = NULL, *negative = "", *model_path = NULL, *variant = NULL,
               *config_dir = NULL, *tok_mode = NULL;
    const char *out = "out.png";
    int steps = 50, size = 0, threads = 0, quiet = 0;
    float guidance = 1.0f;
    const char *device = NULL;
    const cli_opt opts[] = {
        {"--image", CLI_STR, &in, 0, 0},
        {"--prompt", CLI_STR, &prompt, 0, 0},
        {"--negative", CLI_STR, &negative, 0, 0},
        {"--steps", CLI_INT, &steps, 1, 1000},
        {"--guidance", CLI_FLOAT, &guidance, 0, 100},
        {"--size", CLI_INT, &size, 8, 8192},
        {"--model", CLI_STR, &model_path, 0, 0},
        {"--variant", CLI_STR, &variant, 0, 0},
        {"--config", CLI_STR, &config_dir, 0, 0},  {"--tokenizer-mode", CLI_STR, &tok_mode, 0, 0},
        {"--out", CLI_STR, &out, 0, 0},
        {"--threads", CLI_INT, &threads, 1, 1024},
        {"--device", CLI_STR, &device, 0, 0},
        {"--quiet", CLI_FLAG, &quiet, 0, 0},
    };
    oir_error err = {0};
    sd_model *m = NULL;
    sampler s = {0};
    float *ctx = NULL, *uncond = NULL, *z = NULL, *pixels = NULL;
    image src = {0}, vae_img = {0}, rec_img = {0};
    int rc, exit_code = 0;
    if ((rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL, &err)))
        goto fail;
    if (!in || !prompt) {
        rc = oir_fail(&err, OIR_E_ARG, "%s is required (see oir reconstruct --help)",
                      !in ? "--image" : "--prompt");
        goto fail;
    }
    int model_default = !model_path;
    if (!model_path) model_path = cli_default_model();
    const output_input inputs[] = {{in, "--image"},
                                   {model_path, "--model"},
                                   {config_dir, "--config"},
                                   {getenv("OIR_TOKENIZER"), "$OIR_TOKENIZER"}};
    if ((rc = cli_check_input_file("--image", in, &err)) || (rc = cli_check_png_name(out, &err)) ||
        (rc = cli_check_out_file(out, inputs, 4, &err)))
        goto fail;
    if ((rc = cli_sd_set_device(device, &err))) goto fail;
    cli_set_threads(threads);
    double t0 = clock_wall_s();
    progress_bar bar;
    progress_init(&bar, quiet);
    tokenizer_mode mode;
    if ((rc = cli_tokenizer_mode(tok_mode, &mode, &err))) goto fail;
    if ((rc = cli_open_sampler(&s, &m, model_path, model_default, variant, config_dir, mode, &size, steps,
                               &bar, &err)) ||
        (rc = image_load_square(&src, in, size, &err)))
        goto fail;
    size_t ctx_n = (size_t)s.ctx_len * s.ctx_dim;
    ctx = malloc(ctx_n * sizeof *ctx);
    uncond = malloc(ctx_n * sizeof *uncond);
    z = malloc(s.lat_n * sizeof *z);
    pixels = malloc((size_t)3 * size * size * sizeof *pixels);
    if (!ctx || !uncond || !z || !pixels) {
        rc = oir_fail(&err, OIR_E_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = cli_encode_prompt(&s, "--prompt", prompt, ctx, &err))) goto fail;
    int cfg = guidance != 1.0f;
    if (cfg && (rc = cli_encode_prompt(&s, "--negative", negative, uncond, &err))) goto fail;
    image_to_tensor(&src, pixels);
    if ((rc = sampler_encode_image(&s, pixels, z, &err))) goto fail;
    /* VAE alone: decode the clean latent. */
    if ((rc = sampler_decode(&s, z, 1, pixels, &err)) ||
        (rc = cli_tensor_to_image(&vae_img, pixels, size, &err)))
        goto fail;
    if ((rc = sampler_invert(&s, z, 0, steps, ctx, NULL, &err)) ||
        (rc = sampler_denoise(&s, z, steps, 0, ctx, cfg ? uncond : NULL, guidance, &err)) ||
        (rc = sampler_decode(&s, z, 1, pixels, &err)) ||
        (rc = cli_tensor_to_image(&rec_img, pixels, size, &err)) ||
        (rc = image_save_png(&rec_img, out, &err)))
        goto fail;
    if (!quiet)
        printf("wrote %s (%dx%d, %d inversion + %d denoising steps, guidance %g, %.1f s)\n", out,
               size, size, steps, steps, guidance, clock_wall_s() - t0);
    print_psnr("reconstruction vs input", cli_psnr(&rec_img, &src));
    print_psnr("VAE only (encode -> decode) vs input", cli_psnr(&vae_img, &src));
    goto cleanup;
fail:
    exit_code = cli_report("reconstruct", &err);
cleanup:
    image_free(&src);
    image_free(&vae_img);
    image_free(&rec_img);
    free(ctx);
    free(uncond);
    free(z);
    free(pixels);
    sampler_free(&s);
    sd_model_free(m);
    return exit_code;
}
