/* Fuzz target: the JSON configs of a model folder.
 *
 * The input is one JSON file, given to every reader at once (each takes the
 * keys it knows, so one input can exercise all of them):
 *   - unet/vae/text_encoder config.json: unet_config_load, vae_config_load,
 *     clip_text_config_load, clip_vision_config_load (CLIPTextConfig,
 *     CLIPVisionConfig or a whole CLIPConfig), and what is computed from a
 *     config that passed (downscale, arena sizes, CLIP grid);
 *   - scheduler_config.json: ddim_config_load and ddim_config_parse, then
 *     ddim_init + ddim_set_timesteps on a config that passed;
 *   - preprocessor_config.json: clip_preprocess_config_load and
 *     clip_preprocess_size;
 *   - model_index.json and a component folder's config.json + shard index
 *     (*.safetensors.index.json): model_path_detect, sd_plan_folder (plain
 *     and fp16 variant), and sd_model_load on a pipeline folder whose
 *     model_index.json and component configs are all the input and whose
 *     weight files are empty (it builds the models from the configs and
 *     stops at the missing tensors). */
#include "fuzz_util.h"

#include "diffusion/ddim.h"
#include "models/clip_text.h"
#include "models/clip_vision.h"
#include "models/loader.h"
#include "models/unet.h"
#include "models/vae.h"

static void fuzz_mc_models(const char *cfg) {
    oir_error err = {0};
    unet_config uc;
    if (FUZZ_CALL("unet_config_load", unet_config_load(&uc, cfg, &err), &err) == OIR_OK) unet_config_check(&uc, cfg, &err);
    vae_config vc;
    if (FUZZ_CALL("vae_config_load", vae_config_load(&vc, cfg, &err), &err) == OIR_OK) {
        vae_config_check(&vc, cfg, &err);
        vae_downscale(&vc);
    }
    clip_text_config tc;
    if (FUZZ_CALL("clip_text_config_load", clip_text_config_load(&tc, cfg, &err), &err) == OIR_OK) {
        clip_text_config_check(&tc, cfg, &err);
        clip_text_arena_bytes(&tc, 1, 77);
        clip_text_arena_bytes(&tc, 4, 77);
    }
    clip_vision_config cv;
    if (FUZZ_CALL("clip_vision_config_load", clip_vision_config_load(&cv, cfg, &err), &err) ==
        OIR_OK) {
        clip_vision_config_check(&cv, cfg, &err);
        clip_vision_grid(&cv);
        clip_vision_arena_bytes(&cv, 1);
        clip_vision_arena_bytes(&cv, 4);
    }
    clip_preprocess_config pc;
    if (FUZZ_CALL("clip_preprocess_config_load", clip_preprocess_config_load(&pc, cfg, &err),
                  &err) == OIR_OK) {
        static const int sizes[][2] = {{512, 512}, {37, 23}, {1, 16384}, {16384, 4096}};
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            int h, w;
            clip_preprocess_size(&pc, sizes[i][0], sizes[i][1], &h, &w);
        }
    }
}

static void fuzz_mc_scheduler(const char *cfg, const uint8_t *data, size_t size) {
    oir_error err = {0};
    ddim_config dc;
    if (FUZZ_CALL("ddim_config_load", ddim_config_load(&dc, cfg, &err), &err) == OIR_OK) {
        ddim_scheduler s;
        if (ddim_init(&s, &dc, &err) == OIR_OK) {
            if (ddim_set_timesteps(&s, 50, &err) == OIR_OK) {
                ddim_alphabar(&s, s.timesteps[0]);
                ddim_prev_timestep(&s, s.timesteps[s.num_inference_steps - 1]);
            }
            ddim_free(&s);
        }
    }
    char *json = fuzz_cstr(data, size);
    ddim_config_parse(&dc, json, "fuzz", &err);
    free(json);
}

static void fuzz_mc_folders(const uint8_t *data, size_t size) {
    oir_error err = {0};
    sd_plan plan;
    /* a component folder: config.json and its shard indexes */
    fuzz_write("comp/diffusion_pytorch_model.safetensors.index.json", data, size);
    fuzz_write("comp/model.safetensors.index.json", data, size);
    fuzz_write("comp/diffusion_pytorch_model.safetensors.index.fp16.json", data, size);
    fuzz_write("comp/scheduler_config.json", data, size);
    const char *comp = fuzz_subdir("comp");
    model_path_detect(comp);
    if (FUZZ_CALL("sd_plan_folder comp", sd_plan_folder(&plan, comp, NULL, &err), &err) == OIR_OK)
        sd_plan_free(&plan);
    if (sd_plan_folder(&plan, comp, "fp16", &err) == OIR_OK) sd_plan_free(&plan);

    /* a pipeline folder: model_index.json and every component config, each
     * component with an empty weights file (so loading gets to building
     * the models from the configs, and stops at the missing tensors) */
    static const char empty_st[] = "\x20\0\0\0\0\0\0\0{\"__metadata__\":{\"format\":\"pt\"}}";
    static int have_weights;
    if (!have_weights) {
        const uint8_t *e = (const uint8_t *)empty_st;
        fuzz_write("pipe/unet/diffusion_pytorch_model.safetensors", e, sizeof empty_st - 1);
        fuzz_write("pipe/vae/diffusion_pytorch_model.safetensors", e, sizeof empty_st - 1);
        fuzz_write("pipe/text_encoder/model.safetensors", e, sizeof empty_st - 1);
        have_weights = 1;
    }
    fuzz_write("pipe/model_index.json", data, size);
    fuzz_write("pipe/unet/config.json", data, size);
    fuzz_write("pipe/vae/config.json", data, size);
    fuzz_write("pipe/text_encoder/config.json", data, size);
    fuzz_write("pipe/scheduler/scheduler_config.json", data, size);
    const char *pipe = fuzz_subdir("pipe");
    model_path_detect(pipe);
    if (FUZZ_CALL("sd_plan_folder pipe", sd_plan_folder(&plan, pipe, NULL, &err), &err) == OIR_OK)
        sd_plan_free(&plan);
    sd_load_params p = sd_load_default_params();
    p.components = SD_TEXT_ENCODER | SD_UNET | SD_VAE;
    sd_model *m = NULL;
    if (FUZZ_CALL("sd_model_load pipe", sd_model_load(&m, pipe, &p, &err), &err) == OIR_OK)
        sd_model_free(m);
}

static int fuzz_model_config_one(const uint8_t *data, size_t size) {
    const char *cfg = fuzz_write("comp/config.json", data, size);
    fuzz_mc_models(cfg);
    fuzz_mc_scheduler(cfg, data, size);
    fuzz_mc_folders(data, size);
    return 0;
}

FUZZ_ENTRY(fuzz_model_config_one)
