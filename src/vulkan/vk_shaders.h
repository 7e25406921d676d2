/* The compute shaders: src/vulkan/shaders/<name>.comp, compiled by glslc at
 * build time into SPIR-V and embedded as C arrays (the generated
 * build/<BUILD>/vulkan/vk_spirv.c defines vk_spirv_table). */
#ifndef OIR_VULKAN_VK_SHADERS_H
#define OIR_VULKAN_VK_SHADERS_H

#include <stddef.h>
#include <stdint.h>

/* Keep in step with vk_shader_names in vk_device.c. */
enum {
    VK_SH_GEMM_NN = 0, /* C = A B           (matmul, 1x1 convolutions) */
    VK_SH_GEMM_NT,     /* C = A B^T         (linear, matmul b_trans) */
    VK_SH_GEMM_CONV,   /* implicit-GEMM convolution */
    VK_SH_ATTENTION,   /* memory-efficient attention, spec: head dim, keys per tile */
    VK_SH_NORM,        /* group norm / layer norm (+ SiLU) */
    VK_SH_SOFTMAX,
    VK_SH_ELTWISE,     /* add, mul, scale, activations, GEGLU, guidance, copy */
    VK_SH_SHAPE,       /* upsample, concat, channel bias, layout changes */
    VK_SH_DDIM,
    VK_SH_NONFINITE,
    /* the GEMMs with fp16 operands (fp16 weights), in gemm_shader's order */
    VK_SH_GEMM_NN_A16,
    VK_SH_GEMM_NN_B16,
    VK_SH_GEMM_NN_AB16,
    VK_SH_GEMM_NT_A16,
    VK_SH_GEMM_NT_B16,
    VK_SH_GEMM_NT_AB16,
    VK_SH_GEMM_CONV_A16,
    /* the cooperative-matrix GEMMs (tensor cores, fp16 tiles, fp32
     * accumulate; vk_coopmat.h), spec: lM, lN, lK; in this order: the
     * variants of NN, NT, CONV, then of the fp16 ones above */
    VK_SH_GEMM_NN_CM,
    VK_SH_GEMM_NT_CM,
    VK_SH_GEMM_CONV_CM,
    VK_SH_GEMM_NN_A16_CM,
    VK_SH_GEMM_NN_B16_CM,
    VK_SH_GEMM_NN_AB16_CM,
    VK_SH_GEMM_NT_A16_CM,
    VK_SH_GEMM_NT_B16_CM,
    VK_SH_GEMM_NT_AB16_CM,
    VK_SH_GEMM_CONV_A16_CM,
    VK_SHADER_COUNT
};

typedef struct {
    const char *name;    /* file name without .comp */
    const uint32_t *code;
    size_t bytes;
} vk_spirv;

extern const vk_spirv vk_spirv_table[];
extern const int vk_spirv_count;

#endif
