/* The cooperative-matrix (tensor core) GEMM path (docs/BACKENDS.md
 * "Cooperative matrices"): the choice (vk_pick_gemm_path) over fake device
 * properties, OIR_VULKAN_COOPMAT's parsing, its refusal on a device without
 * cooperative matrices (lavapipe here: OIR_TEST_VULKAN=skip skips that part,
 * =N picks vulkan:N) and the embedded SPIR-V of the *_cm shaders. Their
 * results are only checked on a GPU (scripts/gpu_check.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "harness.h"

#ifdef OIR_HAVE_VULKAN
#include "vulkan/vk_coopmat.h"
#include "vulkan/vk_shaders.h"

/* fp16 x fp16 -> fp32, subgroup scope */
static vk_coopmat_shape shape(uint32_t m, uint32_t n, uint32_t k) { return (vk_coopmat_shape){m, n, k, 1, 1, 1, 1, 1}; }

static vk_coopmat_props props_with(vk_coopmat_shape s) {
    vk_coopmat_props p = {.available = 1, .subgroup_size = 32, .nshapes = 1};
    p.shapes[0] = s;
    return p;
}

static void t_pick(void) {
    vk_coopmat_props none = {0}, nv = props_with(shape(16, 16, 16));
    const vk_coopmat_mode modes[3] = {VK_COOPMAT_OFF, VK_COOPMAT_ON, VK_COOPMAT_AUTO};
    /* mode x fp16 weights on a device with a shape: ON always, AUTO with fp16 weights, OFF never */
    const vk_gemm_path want[3][2] = {{VK_GEMM_PLAIN, VK_GEMM_PLAIN},
                                     {VK_GEMM_COOPMAT, VK_GEMM_COOPMAT},
                                     {VK_GEMM_PLAIN, VK_GEMM_COOPMAT}};
    for (int m = 0; m < 3; m++)
        for (int w = 0; w < 2; w++) {
            CHECK(vk_pick_gemm_path(&nv, modes[m], w) == want[m][w], "16x16x16 device, mode %d, fp16 weights %d: path %d",
                  (int)modes[m], w, (int)want[m][w]);
            CHECK(vk_pick_gemm_path(&none, modes[m], w) == VK_GEMM_PLAIN, "no cooperative matrices, mode %d, fp16 weights %d: plain",
                  (int)modes[m], w);
        }
    CHECK(vk_pick_gemm_path(NULL, VK_COOPMAT_ON, 1) == VK_GEMM_PLAIN, "no properties: plain");
    vk_coopmat_props off = nv;
    off.available = 0;
    CHECK(vk_pick_gemm_path(&off, VK_COOPMAT_ON, 1) == VK_GEMM_PLAIN, "shapes listed but the feature missing: plain");

    /* shapes the shaders cannot take: fp16 accumulate, fp32 inputs, a non-subgroup scope, tile misfits */
    vk_coopmat_shape bad[6];
    for (int i = 0; i < 6; i++) bad[i] = shape(16, 16, 16);
    bad[0].c_fp32 = 0, bad[0].d_fp32 = 0; /* fp16 -> fp16 accumulate: refused */
    bad[1].d_fp32 = 0;
    bad[2].a_fp16 = 0;
    bad[3].subgroup = 0;
    bad[4] = shape(16, 16, 32); /* K over the k-step of 16 */
    bad[5] = shape(8, 8, 16);   /* 64 tiles of 8x8 over 8 subgroups: 8 each, fits */
    const int fits[6] = {0, 0, 0, 0, 0, 1};
    for (int i = 0; i < 6; i++) {
        vk_coopmat_props p = props_with(bad[i]);
        CHECK(vk_pick_gemm_path(&p, VK_COOPMAT_ON, 1) == (fits[i] ? VK_GEMM_COOPMAT : VK_GEMM_PLAIN),
              "shape %ux%ux%u (a16 %d c32 %d d32 %d subgroup %d): %s", bad[i].m, bad[i].n, bad[i].k, bad[i].a_fp16,
              bad[i].c_fp32, bad[i].d_fp32, bad[i].subgroup, fits[i] ? "used" : "refused");
    }
    vk_coopmat_props wide = props_with(shape(8, 8, 16));
    wide.subgroup_size = 64; /* 4 subgroups: 16 tiles each, over the 8 accumulators */
    CHECK(vk_pick_gemm_path(&wide, VK_COOPMAT_ON, 1) == VK_GEMM_PLAIN, "8x8 tiles with 64-wide subgroups refused");
    wide.subgroup_size = 0;
    CHECK(!vk_coopmat_pick_shape(&wide, NULL), "an unknown subgroup size refused");

    /* the first usable shape of several (the fp16-accumulate one skipped) */
    vk_coopmat_props many = props_with(bad[0]);
    many.shapes[1] = shape(16, 8, 16), many.shapes[2] = shape(16, 16, 16), many.nshapes = 3;
    vk_coopmat_shape got = {0};
    CHECK(vk_coopmat_pick_shape(&many, &got) && got.m == 16 && got.n == 8 && got.k == 16 && got.c_fp32,
          "of fp16-accumulate 16x16x16, 16x8x16, 16x16x16 the 16x8x16 picked: %ux%ux%u", got.m, got.n, got.k);
}

static void t_parse(void) {
    vk_coopmat_mode m = VK_COOPMAT_OFF;
    CHECK(!vk_coopmat_mode_parse(NULL, &m) && m == VK_COOPMAT_AUTO, "unset: auto");
    CHECK(!vk_coopmat_mode_parse("", &m) && m == VK_COOPMAT_AUTO, "empty: auto");
    CHECK(!vk_coopmat_mode_parse("auto", &m) && m == VK_COOPMAT_AUTO, "auto");
    CHECK(!vk_coopmat_mode_parse("0", &m) && m == VK_COOPMAT_OFF, "0: off");
    CHECK(!vk_coopmat_mode_parse("1", &m) && m == VK_COOPMAT_ON, "1: on");
    const char *bad[] = {"yes", "2", "on", "01", "auto "};
    for (int i = 0; i < 5; i++) CHECK(vk_coopmat_mode_parse(bad[i], &m) == -1, "'%s' refused", bad[i]);
}

static void t_spirv(void) {
    const char *names[] = {"gemm_nn_cm",      "gemm_nt_cm",      "gemm_conv_cm",    "gemm_nn_a16_cm", "gemm_nn_b16_cm",
                           "gemm_nn_ab16_cm", "gemm_nt_a16_cm",  "gemm_nt_b16_cm",  "gemm_nt_ab16_cm", "gemm_conv_a16_cm"};
    CHECK(VK_SH_GEMM_CONV_A16_CM - VK_SH_GEMM_NN_CM + 1 == 10, "ten cooperative GEMM shaders in the enum");
    for (int i = 0; i < 10; i++) {
        const vk_spirv *s = NULL;
        for (int j = 0; j < vk_spirv_count; j++)
            if (!strcmp(vk_spirv_table[j].name, names[i])) s = &vk_spirv_table[j];
        /* SPIR-V's magic number first */
        CHECK(s && s->bytes > 20 && s->code[0] == 0x07230203u, "%s embedded (%zu bytes)", names[i], s ? s->bytes : 0);
    }
}

/* OIR_VULKAN_COOPMAT=1 on a device without cooperative matrices: a clear
 * error at backend creation; 0 and auto create it; a bad value refused. */
static void t_create(int index) {
    char dev[32];
    snprintf(dev, sizeof dev, "vulkan:%d", index);
    be_device_spec spec;
    oir_error err = {0};
    if (!CHECK(!be_parse_device(dev, &spec, &err), "parse %s: %s", dev, err.message)) return;
    oir_backend *be = NULL;
    /* lavapipe has no cooperative matrices; elsewhere hide them */
    setenv("OIR_VULKAN_NO_COOPMAT", "1", 1);
    setenv("OIR_VULKAN_COOPMAT", "1", 1);
    int rc = be_create(&be, &spec, &err);
    CHECK(rc == OIR_E_UNSUPPORTED && !be && strstr(err.message, "OIR_VULKAN_COOPMAT=1 needs cooperative matrices"),
          "OIR_VULKAN_COOPMAT=1 without cooperative matrices refused: %d '%s'", rc, err.message);
    if (be) be_destroy(be), be = NULL;
    setenv("OIR_VULKAN_COOPMAT", "maybe", 1);
    rc = be_create(&be, &spec, &err);
    CHECK(rc == OIR_E_ARG && !be && strstr(err.message, "OIR_VULKAN_COOPMAT=maybe"), "OIR_VULKAN_COOPMAT=maybe refused: %d '%s'",
          rc, err.message);
    if (be) be_destroy(be), be = NULL;
    const char *ok[] = {"0", "auto"};
    for (int i = 0; i < 2; i++) {
        setenv("OIR_VULKAN_COOPMAT", ok[i], 1);
        rc = be_create(&be, &spec, &err);
        CHECK(rc == OIR_OK && be, "OIR_VULKAN_COOPMAT=%s creates %s: %s", ok[i], dev, rc ? err.message : "ok");
        if (be) be_destroy(be), be = NULL;
    }
    unsetenv("OIR_VULKAN_COOPMAT");
    unsetenv("OIR_VULKAN_NO_COOPMAT");
}
#endif

int main(void) {
#ifndef OIR_HAVE_VULKAN
    printf("  no Vulkan in this build\n");
    CHECK(1, "nothing to test without Vulkan");
#else
    t_parse();
    t_pick();
    t_spirv();
    const char *sel = getenv("OIR_TEST_VULKAN");
    if (sel && !strcmp(sel, "skip"))
        printf("  vulkan skipped (OIR_TEST_VULKAN=skip)\n");
    else if (be_have_vulkan())
        t_create(sel ? atoi(sel) : 0);
#endif
    return th_summary();
}
