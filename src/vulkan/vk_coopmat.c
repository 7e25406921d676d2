/* The cooperative-matrix GEMM path's choice (vk_coopmat.h). */
#include "vulkan/vk_coopmat.h"

#include <stddef.h>
#include <string.h>

/* The tile of gemm.glsl (BM x BN, k-step BK, 256 threads) and its
 * accumulators per subgroup (CM_MAX_TILES). */
#define CM_BM 64u
#define CM_BN 64u
#define CM_BK 16u
#define CM_THREADS 256u
#define CM_MAX_TILES 8u

int vk_coopmat_mode_parse(const char *s, vk_coopmat_mode *out) {
    if (!s || !*s || !strcmp(s, "auto")) *out = VK_COOPMAT_AUTO;
    else if (!strcmp(s, "0")) *out = VK_COOPMAT_OFF;
    else if (!strcmp(s, "1")) *out = VK_COOPMAT_ON;
    else return -1;
    return 0;
}

static int shape_fits(const vk_coopmat_shape *s, uint32_t subgroup_size) {
    if (!s->a_fp16 || !s->b_fp16 || !s->c_fp32 || !s->d_fp32 || !s->subgroup) return 0;
    if (!s->m || !s->n || !s->k || CM_BM % s->m || CM_BN % s->n || CM_BK % s->k) return 0;
    if (!subgroup_size || CM_THREADS % subgroup_size) return 0;
    uint32_t tiles = (CM_BM / s->m) * (CM_BN / s->n), subgroups = CM_THREADS / subgroup_size;
    return (tiles + subgroups - 1) / subgroups <= CM_MAX_TILES;
}

int vk_coopmat_pick_shape(const vk_coopmat_props *props, vk_coopmat_shape *out) {
    if (!props || !props->available) return 0;
    for (int i = 0; i < props->nshapes && i < VK_COOPMAT_MAX_SHAPES; i++)
        if (shape_fits(&props->shapes[i], props->subgroup_size)) {
            if (out) *out = props->shapes[i];
            return 1;
        }
    return 0;
}

vk_gemm_path vk_pick_gemm_path(const vk_coopmat_props *props, vk_coopmat_mode mode, int fp16_weights) {
    if (mode == VK_COOPMAT_OFF || (mode == VK_COOPMAT_AUTO && !fp16_weights)) return VK_GEMM_PLAIN;
    return vk_coopmat_pick_shape(props, NULL) ? VK_GEMM_COOPMAT : VK_GEMM_PLAIN;
}
