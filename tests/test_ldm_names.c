/* ldm_names: diffusers -> LDM single-file names, checked against every key of
 * tests/fixtures/sd/ldm_key_map.json (written by tools/sd_keys.py, itself
 * checked against diffusers' convert_from_ckpt) and against hand-checked
 * SD 1.5 names. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "models/ldm_names.h"
#include "models/unet.h"
#include "models/vae.h"

static cJSON *read_json(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!CHECK(fp != NULL, "cannot open %s", path)) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, fp);
    buf[got] = 0;
    fclose(fp);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    CHECK(j != NULL, "%s: not JSON", path);
    return j;
}

/* Every key of one section maps exactly; returns the number checked. */
static int check_section(const cJSON *root, const char *section, const ldm_layout *l) {
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, section);
    if (!CHECK(cJSON_IsObject(map), "ldm_key_map.json: no \"%s\"", section)) return 0;
    int n = 0, bad = 0;
    const cJSON *it;
    char buf[512], full[600];
    cJSON_ArrayForEach(it, map) {
        const char *got = ldm_map_name(l, it->string, buf, sizeof buf);
        snprintf(full, sizeof full, "%s%s", ldm_prefix(l->component), got ? got : "(none)");
        if (!cJSON_IsString(it) || strcmp(full, it->valuestring)) {
            if (bad++ < 5)
                CHECK(0, "%s: %s -> %s, expected %s", section, it->string, full,
                      cJSON_IsString(it) ? it->valuestring : "?");
        }
        n++;
    }
    CHECK(bad == 0 && n > 0, "%s: %d of %d names differ", section, bad, n);
    printf("  %s: %d names checked\n", section, n);
    return n;
}

static void test_fixture_map(void) {
    oir_error err = {0};
    unet_config uc;
    vae_config vc;
    const char *up = th_fixture_path("sd/tiny-pipe/unet/config.json");
    if (!CHECK(unet_config_load(&uc, up, &err) == OIR_OK, "%s: %s", up, err.message)) return;
    const char *vp = th_fixture_path("sd/tiny-pipe/vae/config.json");
    if (!CHECK(vae_config_load(&vc, vp, &err) == OIR_OK, "%s: %s", vp, err.message)) return;
    cJSON *root = read_json(th_fixture_path("sd/ldm_key_map.json"));
    if (!root) return;
    ldm_layout lu = {.component = LDM_UNET, .num_blocks = uc.n_blocks,
                     .layers_per_block = uc.layers_per_block[0]};
    for (int i = 0; i < uc.n_blocks; i++) lu.up_has_attn[i] = (unsigned char)uc.up_attn[i];
    ldm_layout lv = {.component = LDM_VAE, .num_blocks = vc.n_blocks};
    ldm_layout lt = {.component = LDM_TEXT};
    int n = check_section(root, "unet", &lu) + check_section(root, "vae", &lv) +
            check_section(root, "text_encoder", &lt);
    CHECK(n > 200, "only %d names in the map", n);
    cJSON_Delete(root);
}

static void expect(const ldm_layout *l, const char *name, const char *want) {
    char buf[256];
    const char *got = ldm_map_name(l, name, buf, sizeof buf);
    if (!want)
        CHECK(!got, "%s should have no LDM name, got %s", name, got);
    else
        CHECK(got && !strcmp(got, want), "%s -> %s, expected %s", name, got ? got : "(none)", want);
}

static void test_sd15(void) {
    ldm_layout u = {.component = LDM_UNET, .layers_per_block = 2, .num_blocks = 4,
                    .up_has_attn = {0, 1, 1, 1}};
    expect(&u, "conv_in.weight", "input_blocks.0.0.weight");
    expect(&u, "time_embedding.linear_2.bias", "time_embed.2.bias");
    expect(&u, "down_blocks.0.resnets.0.conv1.weight", "input_blocks.1.0.in_layers.2.weight");
    expect(&u, "down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight",
           "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight");
    expect(&u, "down_blocks.0.downsamplers.0.conv.weight", "input_blocks.3.0.op.weight");
    expect(&u, "down_blocks.1.resnets.0.conv_shortcut.bias", "input_blocks.4.0.skip_connection.bias");
    expect(&u, "down_blocks.3.resnets.1.norm2.bias", "input_blocks.11.0.out_layers.0.bias");
    expect(&u, "mid_block.resnets.1.time_emb_proj.weight", "middle_block.2.emb_layers.1.weight");
    expect(&u, "mid_block.attentions.0.proj_in.weight", "middle_block.1.proj_in.weight");
    expect(&u, "up_blocks.0.resnets.2.conv2.weight", "output_blocks.2.0.out_layers.3.weight");
    expect(&u, "up_blocks.0.upsamplers.0.conv.weight", "output_blocks.2.1.conv.weight");
    expect(&u, "up_blocks.1.upsamplers.0.conv.bias", "output_blocks.5.2.conv.bias");
    expect(&u, "up_blocks.3.attentions.2.proj_out.weight", "output_blocks.11.1.proj_out.weight");
    expect(&u, "conv_norm_out.weight", "out.0.weight");
    expect(&u, "conv_out.bias", "out.2.bias");
    /* Outside the layout: no name (never an alias of another layer). */
    expect(&u, "down_blocks.4.resnets.0.conv1.weight", NULL);
    expect(&u, "down_blocks.0.resnets.2.conv1.weight", NULL);
    expect(&u, "down_blocks.3.downsamplers.0.conv.weight", NULL);
    expect(&u, "up_blocks.3.upsamplers.0.conv.weight", NULL);
    expect(&u, "up_blocks.0.resnets.3.conv1.weight", NULL);
    expect(&u, "mid_block.resnets.2.conv1.weight", NULL);
    expect(&u, "down_blocks.0.resnets.0.nonsense.weight", NULL);
    expect(&u, "add_embedding.linear_1.weight", NULL);
    /* Per-block layer counts. */
    ldm_layout v = {.component = LDM_UNET, .num_blocks = 2, .layers = {1, 3}, .up_has_attn = {1, 0}};
    expect(&v, "down_blocks.1.resnets.2.conv1.weight", "input_blocks.5.0.in_layers.2.weight");
    expect(&v, "up_blocks.0.resnets.3.conv1.weight", "output_blocks.3.0.in_layers.2.weight");
    expect(&v, "up_blocks.0.upsamplers.0.conv.weight", "output_blocks.3.2.conv.weight");
    expect(&v, "up_blocks.1.resnets.0.conv1.weight", "output_blocks.4.0.in_layers.2.weight");

    ldm_layout a = {.component = LDM_VAE, .num_blocks = 4};
    expect(&a, "encoder.conv_in.weight", "encoder.conv_in.weight");
    expect(&a, "encoder.down_blocks.1.resnets.0.conv_shortcut.bias",
           "encoder.down.1.block.0.nin_shortcut.bias");
    expect(&a, "encoder.down_blocks.2.downsamplers.0.conv.weight",
           "encoder.down.2.downsample.conv.weight");
    expect(&a, "encoder.mid_block.attentions.0.query.weight", "encoder.mid.attn_1.q.weight");
    expect(&a, "decoder.mid_block.attentions.0.proj_attn.bias", "decoder.mid.attn_1.proj_out.bias");
    expect(&a, "decoder.mid_block.attentions.0.to_out.0.weight",
           "decoder.mid.attn_1.proj_out.weight");
    expect(&a, "decoder.mid_block.attentions.0.group_norm.weight", "decoder.mid.attn_1.norm.weight");
    expect(&a, "decoder.mid_block.resnets.1.norm1.bias", "decoder.mid.block_2.norm1.bias");
    expect(&a, "decoder.up_blocks.0.resnets.2.conv2.weight", "decoder.up.3.block.2.conv2.weight");
    expect(&a, "decoder.up_blocks.0.upsamplers.0.conv.weight", "decoder.up.3.upsample.conv.weight");
    expect(&a, "decoder.up_blocks.3.resnets.0.conv_shortcut.weight",
           "decoder.up.0.block.0.nin_shortcut.weight");
    expect(&a, "decoder.conv_norm_out.bias", "decoder.norm_out.bias");
    expect(&a, "post_quant_conv.weight", "post_quant_conv.weight");
    expect(&a, "decoder.up_blocks.4.resnets.0.conv1.weight", NULL);
    expect(&a, "encoder.up_blocks.0.resnets.0.conv1.weight", NULL);

    ldm_layout t = {.component = LDM_TEXT};
    expect(&t, "text_model.encoder.layers.11.mlp.fc2.bias", "text_model.encoder.layers.11.mlp.fc2.bias");
    expect(&t, "text_projection.weight", NULL);
    t.text_legacy = 1;
    expect(&t, "text_model.final_layer_norm.weight", "final_layer_norm.weight");

    CHECK(ldm_vae_reshape_ok("encoder.mid_block.attentions.0.value.weight") &&
              ldm_vae_reshape_ok("decoder.mid_block.attentions.0.to_out.0.weight") &&
              !ldm_vae_reshape_ok("decoder.mid_block.attentions.0.value.bias") &&
              !ldm_vae_reshape_ok("decoder.conv_in.weight"),
          "reshape rule: VAE attention projection weights only");
    char small[8];
    CHECK(!ldm_map_name(&u, "down_blocks.0.resnets.0.conv1.weight", small, sizeof small),
          "a too small buffer gives NULL, not a truncated name");
    CHECK(!strcmp(ldm_prefix(LDM_UNET), "model.diffusion_model.") &&
              !strcmp(ldm_prefix(LDM_VAE), "first_stage_model.") &&
              !strcmp(ldm_prefix(LDM_TEXT), "cond_stage_model.transformer."),
          "prefixes");
}

int main(void) {
    test_fixture_map();
    test_sd15();
    return th_summary();
}
