/* The Vulkan backend's insides, shared by vk_device.c (loader, devices,
 * memory, command stream, pipelines) and vk_ops.c (the table's ops).
 *
 * - Loader: libvulkan is dlopen'd once per process (OIR_VULKAN_LOADER
 *   overrides its name) and every entry point is fetched into vk_fns; no
 *   link-time dependency on Vulkan. One VkInstance per process, kept to the
 *   end (the driver loads once); a VkDevice per backend.
 * - Memory: device-local blocks (VK_BLOCK_MIN bytes or one big buffer),
 *   each one VkBuffer, carved by a first-fit free list in VK_ALIGN steps;
 *   a be_buffer is (block, offset). A host-visible staging buffer carries
 *   uploads, downloads and small per-op parameters; it is reused after
 *   every fence.
 * - Command stream: ops record into one command buffer (descriptor sets
 *   from pools reset after the fence, a memory barrier after each command);
 *   sync / download / a full staging buffer submit it with one fence and
 *   wait.
 * - Views bind as (aligned offset, range) windows of their block; the rest
 *   of the offset goes to the shader in push constants (the first words of
 *   every shader's push block are its bindings' element offsets). A window
 *   over maxStorageBufferRange is refused (elementwise ops split instead).
 * - Pipelines: one per (shader, specialisation constants), created on first
 *   use and kept; descriptor-set and pipeline layouts per binding count. */
#ifndef OIR_VULKAN_VK_INTERNAL_H
#define OIR_VULKAN_VK_INTERNAL_H

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"
#include "vulkan/vk_coopmat.h"
#include "vulkan/vk_shaders.h"

#define VK_GLOBAL_FNS(X)                     \
    X(vkCreateInstance)                      \
    X(vkEnumerateInstanceExtensionProperties)

#define VK_INSTANCE_FNS(X)                        \
    X(vkDestroyInstance)                          \
    X(vkEnumeratePhysicalDevices)                 \
    X(vkGetPhysicalDeviceProperties)              \
    X(vkGetPhysicalDeviceFeatures2)               \
    X(vkGetPhysicalDeviceProperties2)             \
    X(vkGetPhysicalDeviceMemoryProperties)        \
    X(vkGetPhysicalDeviceQueueFamilyProperties)   \
    X(vkEnumerateDeviceExtensionProperties)       \
    X(vkCreateDevice)                             \
    X(vkGetDeviceProcAddr)

#define VK_DEVICE_FNS(X)             \
    X(vkDestroyDevice)               \
    X(vkGetDeviceQueue)              \
    X(vkCreateBuffer)                \
    X(vkDestroyBuffer)               \
    X(vkGetBufferMemoryRequirements) \
    X(vkAllocateMemory)              \
    X(vkFreeMemory)                  \
    X(vkBindBufferMemory)            \
    X(vkMapMemory)                   \
    X(vkUnmapMemory)                 \
    X(vkCreateShaderModule)          \
    X(vkDestroyShaderModule)         \
    X(vkCreateDescriptorSetLayout)   \
    X(vkDestroyDescriptorSetLayout)  \
    X(vkCreatePipelineLayout)        \
    X(vkDestroyPipelineLayout)       \
    X(vkCreateComputePipelines)      \
    X(vkDestroyPipeline)             \
    X(vkCreateDescriptorPool)        \
    X(vkDestroyDescriptorPool)       \
    X(vkResetDescriptorPool)         \
    X(vkAllocateDescriptorSets)      \
    X(vkUpdateDescriptorSets)        \
    X(vkCreateCommandPool)           \
    X(vkDestroyCommandPool)          \
    X(vkResetCommandPool)            \
    X(vkAllocateCommandBuffers)      \
    X(vkBeginCommandBuffer)          \
    X(vkEndCommandBuffer)            \
    X(vkCmdBindPipeline)             \
    X(vkCmdBindDescriptorSets)       \
    X(vkCmdPushConstants)            \
    X(vkCmdDispatch)                 \
    X(vkCmdPipelineBarrier)          \
    X(vkCmdCopyBuffer)               \
    X(vkCreateFence)                 \
    X(vkDestroyFence)                \
    X(vkResetFences)                 \
    X(vkWaitForFences)               \
    X(vkQueueSubmit)                 \
    X(vkDeviceWaitIdle)

typedef struct {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    PFN_vkEnumerateInstanceVersion vkEnumerateInstanceVersion; /* NULL on a 1.0 loader */
    /* NULL where the loader knows no VK_NV_cooperative_matrix */
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV vkGetPhysicalDeviceCooperativeMatrixPropertiesNV;
#define VK_FN_FIELD(name) PFN_##name name;
    VK_GLOBAL_FNS(VK_FN_FIELD)
    VK_INSTANCE_FNS(VK_FN_FIELD)
    VK_DEVICE_FNS(VK_FN_FIELD)
#undef VK_FN_FIELD
} vk_fns;

#define VK_BLOCK_MIN ((VkDeviceSize)64 << 20) /* bytes of a memory block at least */
#define VK_ALIGN ((VkDeviceSize)256)          /* sub-allocation granularity (>= any offset alignment) */
#define VK_STAGING_BYTES ((VkDeviceSize)32 << 20)
#define VK_MAX_BINDINGS 6
#define VK_PUSH_BYTES 128
#define VK_WG 256 /* threads of the 1-D shaders */

typedef struct {
    VkDeviceSize off, size;
} vk_range;

typedef struct {
    VkDeviceMemory mem;
    VkBuffer buf;
    VkDeviceSize size;
    vk_range *free; /* sorted by offset, coalesced */
    int nfree, capfree;
    long live;      /* buffers carved from it */
} vk_block;

typedef struct {
    be_buffer head;
    int block;
    VkDeviceSize off;  /* in the block */
    VkDeviceSize span; /* bytes reserved (size rounded to VK_ALIGN) */
} vk_buffer;

typedef struct {
    int shader;
    int spec[4];
    int nspec;
    VkPipeline pipe;
} vk_pipe;

typedef struct {
    oir_backend head;
    vk_fns f;
    VkInstance instance;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceLimits limits;
    VkDeviceSize max_range;   /* maxStorageBufferRange */
    VkDeviceSize off_align;   /* minStorageBufferOffsetAlignment */
    VkDeviceSize max_alloc;   /* maxMemoryAllocationSize (0: unknown) */
    uint32_t device_mem_type, staging_mem_type;

    vk_block *blocks;
    int nblocks, capblocks;

    /* staging: host-visible, mapped, reused after each fence */
    VkDeviceMemory staging_mem;
    VkBuffer staging_buf;
    unsigned char *staging;
    VkDeviceSize staging_size, staging_used;

    /* the command stream */
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    int recording;
    VkDescriptorPool *dpools;
    int ndpools, dpool_cur;

    /* the GEMMs' path (vk_pick_gemm_path) and, when cooperative, the shape
     * (the *_cm shaders' specialisation constants) */
    vk_gemm_path gemm_path;
    vk_coopmat_shape coopmat_shape;

    /* pipelines */
    VkShaderModule modules[VK_SHADER_COUNT];
    VkDescriptorSetLayout set_layouts[VK_MAX_BINDINGS + 1]; /* by binding count */
    VkPipelineLayout pipe_layouts[VK_MAX_BINDINGS + 1];
    vk_pipe *pipes;
    int npipes, cappipes;
} vk_backend;

/* A resolved binding: a window of a VkBuffer, and the operand's offset in
 * the window in elements (4-byte words for floats, bytes for masks). */
typedef struct {
    VkBuffer buf;
    VkDeviceSize off, range;
    uint32_t elem;
} vk_bind;

/* vk_device.c */
int vk_check(vk_backend *vb, VkResult r, const char *what);
const char *vk_result_name(VkResult r);
/* The window of view v holding `bytes` bytes; unit 4 (floats), 2 (fp16) or 1 (bytes). */
int vk_bind_view(vk_backend *vb, const char *op, const char *name, be_view v, size_t bytes, int unit,
                 vk_bind *out);
/* `bytes` of the staging buffer for this submission (flushing first when
 * full): *host to fill, *out to bind or copy from. */
int vk_staging_take(vk_backend *vb, size_t bytes, void **host, vk_bind *out);
/* Records one dispatch of `shader` (with spec constants) over bindings b
 * (their element offsets go into push words 0..nb-1, then `params`). */
int vk_dispatch(vk_backend *vb, int shader, const int *spec, int nspec, const vk_bind *b, int nb,
                const void *params, size_t params_bytes, uint32_t gx, uint32_t gy, uint32_t gz);
/* Records a buffer copy (then a barrier). */
int vk_copy_raw(vk_backend *vb, VkBuffer src, VkDeviceSize src_off, VkBuffer dst, VkDeviceSize dst_off,
                VkDeviceSize bytes);
/* Submits the command stream and waits for its fence. */
int vk_flush(vk_backend *vb);
/* The absolute (VkBuffer, offset) of a view. */
void vk_view_abs(vk_backend *vb, be_view v, VkBuffer *buf, VkDeviceSize *off);
/* Splits `groups` workgroups into (x, y) within the device's limits. */
void vk_groups_2d(vk_backend *vb, uint64_t groups, uint32_t *gx, uint32_t *gy);

/* the table's backend and buffer entries (vk_device.c) */
void vk_destroy(oir_backend *be);
int vk_buffer_alloc(oir_backend *be, size_t bytes, be_buffer **out, oir_error *err);
void vk_buffer_free(oir_backend *be, be_buffer *b);
void *vk_buffer_host(oir_backend *be, be_buffer *b);

/* vk_ops.c */
extern const be_ops vk_ops;

#endif
