/* The cooperative-matrix (tensor core) GEMM path: whether a backend uses
 * it, decided from the device's reported shapes, OIR_VULKAN_COOPMAT and
 * fp16 weights (docs/BACKENDS.md "Cooperative matrices"). Plain C, no
 * Vulkan calls: vk_device.c fills vk_coopmat_props from the driver, the
 * tests from fake ones. */
#ifndef OIR_VULKAN_VK_COOPMAT_H
#define OIR_VULKAN_VK_COOPMAT_H

#include <stdint.h>

#define VK_COOPMAT_MAX_SHAPES 16

/* One shape the driver reports (VkCooperativeMatrixPropertiesNV): C (M, N)
 * += A (M, K) B (K, N) in a subgroup; types as the driver names them. */
typedef struct {
    uint32_t m, n, k;
    int a_fp16, b_fp16; /* A, B are float16 */
    int c_fp32, d_fp32; /* C, D (the accumulator and result) are float32 */
    int subgroup;       /* subgroup scope */
} vk_coopmat_shape;

typedef struct {
    int available;     /* VK_NV_cooperative_matrix with its feature, shaderFloat16 and Vulkan 1.1 */
    uint32_t subgroup_size;
    int nshapes;
    vk_coopmat_shape shapes[VK_COOPMAT_MAX_SHAPES];
} vk_coopmat_props;

typedef enum { VK_COOPMAT_OFF = 0, VK_COOPMAT_ON = 1, VK_COOPMAT_AUTO = 2 } vk_coopmat_mode;

typedef enum { VK_GEMM_PLAIN = 0, VK_GEMM_COOPMAT = 1 } vk_gemm_path;

/* OIR_VULKAN_COOPMAT's value: "0", "1", "auto" (NULL or "": auto); -1 for
 * anything else. */
int vk_coopmat_mode_parse(const char *s, vk_coopmat_mode *out);

/* The first reported shape the cooperative GEMM shaders can run (fp16 A
 * and B, fp32 accumulator and result, subgroup scope, M and N dividing the
 * 64 x 64 tile, K dividing its k-step of 16, at most CM_MAX_TILES = 8
 * tiles per subgroup of a 256-thread workgroup); 0 when there is none. */
int vk_coopmat_pick_shape(const vk_coopmat_props *props, vk_coopmat_shape *out);

/* The GEMM path of a backend: cooperative only when the device has a shape
 * (vk_coopmat_pick_shape) and the mode allows it: ON always, AUTO only
 * with fp16 weights (whose fp16 rounding the caller accepted already; the
 * cooperative path rounds the activations to fp16 as well), OFF never. */
vk_gemm_path vk_pick_gemm_path(const vk_coopmat_props *props, vk_coopmat_mode mode, int fp16_weights);

#endif
