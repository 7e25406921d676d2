/* The Vulkan backend's machinery: the run-time loader, device listing and
 * selection, the memory pool, the staging buffer, the command stream and
 * the pipeline cache (vk_internal.h says how they fit). The ops are in
 * vk_ops.c. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vulkan/vk_backend.h"
#include "vulkan/vk_internal.h"

/* Shader names in enum order (vk_shaders.h); each must be in the embedded table. */
static const char *const vk_shader_names[VK_SHADER_COUNT] = {
    "gemm_nn", "gemm_nt", "gemm_conv", "attention", "norm", "softmax", "eltwise", "shape", "ddim", "nonfinite",
    "gemm_nn_a16", "gemm_nn_b16", "gemm_nn_ab16", "gemm_nt_a16", "gemm_nt_b16", "gemm_nt_ab16", "gemm_conv_a16",
    "gemm_nn_cm", "gemm_nt_cm", "gemm_conv_cm", "gemm_nn_a16_cm", "gemm_nn_b16_cm", "gemm_nn_ab16_cm",
    "gemm_nt_a16_cm", "gemm_nt_b16_cm", "gemm_nt_ab16_cm", "gemm_conv_a16_cm",
};

/* ---- the loader --------------------------------------------------------- */

static pthread_once_t loader_once = PTHREAD_ONCE_INIT;
static PFN_vkGetInstanceProcAddr loader_gipa;
static char loader_error[512];

/* dlopens the loader once per process; it stays loaded (drivers do not
 * always unload cleanly). OIR_VULKAN_LOADER names another library. */
static void loader_open(void) {
    const char *env = getenv("OIR_VULKAN_LOADER");
    const char *names[] = {"libvulkan.so.1", "libvulkan.so", "libvulkan.1.dylib", "libMoltenVK.dylib"};
    void *lib = NULL;
    if (env && *env) {
        lib = dlopen(env, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            snprintf(loader_error, sizeof loader_error, "no Vulkan loader: OIR_VULKAN_LOADER=%s cannot be opened",
                     env);
            return;
        }
    } else {
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            snprintf(loader_error, sizeof loader_error,
                     "no Vulkan loader: libvulkan.so.1 is not installed (Debian: apt-get install libvulkan1)");
            return;
        }
    }
    loader_gipa = (PFN_vkGetInstanceProcAddr)dlsym(lib, "vkGetInstanceProcAddr");
    if (!loader_gipa)
        snprintf(loader_error, sizeof loader_error, "no Vulkan loader: %s has no vkGetInstanceProcAddr",
                 env && *env ? env : "libvulkan");
}

const char *vk_result_name(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default: return "VkResult error";
    }
}

static int vk_code(VkResult r) {
    return r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? OIR_E_NOMEM : OIR_E_INTERNAL;
}

int vk_check(vk_backend *vb, VkResult r, const char *what) {
    if (r == VK_SUCCESS) return OIR_OK;
    return be_fail(&vb->head, vk_code(r), "%s: %s: %s (%d)", vb->head.name, what, vk_result_name(r), (int)r);
}

/* Loads the global entry points and creates an instance (API 1.1 or more
 * when the loader has it). */
static int instance_open(vk_fns *f, VkInstance *inst, oir_error *err) {
    *inst = VK_NULL_HANDLE;
    pthread_once(&loader_once, loader_open);
    if (!loader_gipa) return oir_fail(err, OIR_E_UNSUPPORTED, "%s", loader_error);
    memset(f, 0, sizeof *f);
    f->vkGetInstanceProcAddr = loader_gipa;
    f->vkEnumerateInstanceVersion =
        (PFN_vkEnumerateInstanceVersion)loader_gipa(VK_NULL_HANDLE, "vkEnumerateInstanceVersion");
#define VK_LOAD_GLOBAL(name)                                                                   \
    if (!(f->name = (PFN_##name)loader_gipa(VK_NULL_HANDLE, #name)))                           \
        return oir_fail(err, OIR_E_UNSUPPORTED, "no usable Vulkan loader: %s is missing", #name);
    VK_GLOBAL_FNS(VK_LOAD_GLOBAL)
#undef VK_LOAD_GLOBAL
    uint32_t api = VK_API_VERSION_1_0;
    if (f->vkEnumerateInstanceVersion && f->vkEnumerateInstanceVersion(&api) != VK_SUCCESS) api = VK_API_VERSION_1_0;
    if (api > VK_API_VERSION_1_3) api = VK_API_VERSION_1_3;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "oir",
                             .pEngineName = "oir",
                             .apiVersion = api};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkResult r = f->vkCreateInstance(&ci, NULL, inst);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "no Vulkan driver: the loader found no ICD (install your GPU's Vulkan driver, or "
                        "mesa-vulkan-drivers for lavapipe on the CPU)");
    if (r != VK_SUCCESS)
        return oir_fail(err, OIR_E_UNSUPPORTED, "Vulkan: vkCreateInstance failed: %s (%d)", vk_result_name(r),
                        (int)r);
#define VK_LOAD_INSTANCE(name) f->name = (PFN_##name)loader_gipa(*inst, #name);
    VK_INSTANCE_FNS(VK_LOAD_INSTANCE)
#undef VK_LOAD_INSTANCE
    f->vkGetPhysicalDeviceCooperativeMatrixPropertiesNV = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)
        loader_gipa(*inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    if (!f->vkDestroyInstance || !f->vkEnumeratePhysicalDevices || !f->vkGetPhysicalDeviceProperties ||
        !f->vkGetPhysicalDeviceMemoryProperties || !f->vkGetPhysicalDeviceQueueFamilyProperties ||
        !f->vkEnumerateDeviceExtensionProperties || !f->vkCreateDevice || !f->vkGetDeviceProcAddr) {
        if (f->vkDestroyInstance) f->vkDestroyInstance(*inst, NULL);
        *inst = VK_NULL_HANDLE;
        return oir_fail(err, OIR_E_UNSUPPORTED, "no usable Vulkan loader: instance entry points are missing");
    }
    if (api < VK_API_VERSION_1_1) f->vkGetPhysicalDeviceFeatures2 = NULL, f->vkGetPhysicalDeviceProperties2 = NULL;
    return OIR_OK;
}

/* One instance per process, created at first use and kept: the driver is
 * loaded once (unloading lavapipe's LLVM at every instance leaks inside
 * ICU, and reloading it costs time). A failure is remembered and reported
 * alike to every caller. */
static pthread_once_t instance_once = PTHREAD_ONCE_INIT;
static vk_fns instance_fns;
static VkInstance instance_handle;
static oir_error instance_error;

static void instance_init(void) {
    if (instance_open(&instance_fns, &instance_handle, &instance_error)) instance_handle = VK_NULL_HANDLE;
}

static int instance_get(vk_fns *f, VkInstance *inst, oir_error *err) {
    pthread_once(&instance_once, instance_init);
    if (!instance_handle) {
        if (err) *err = instance_error;
        return instance_error.code ? instance_error.code : OIR_E_UNSUPPORTED;
    }
    *f = instance_fns;
    *inst = instance_handle;
    return OIR_OK;
}

/* The physical devices (at most BE_MAX_DEVICES). */
static int physical_devices(vk_fns *f, VkInstance inst, VkPhysicalDevice *pd, uint32_t *n, oir_error *err) {
    *n = BE_MAX_DEVICES;
    VkResult r = f->vkEnumeratePhysicalDevices(inst, n, pd);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE)
        return oir_fail(err, OIR_E_UNSUPPORTED, "Vulkan: vkEnumeratePhysicalDevices failed: %s", vk_result_name(r));
    if (*n == 0)
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "no Vulkan device: the driver reports none (install your GPU's Vulkan driver, or "
                        "mesa-vulkan-drivers for lavapipe on the CPU)");
    return OIR_OK;
}

static int has_extension(vk_fns *f, VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    if (f->vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || !n) return 0;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    if (!e) return 0;
    int found = 0;
    if (f->vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(e[i].extensionName, name);
    free(e);
    return found;
}

static void device_info(vk_fns *f, VkPhysicalDevice pd, be_device_info *o) {
    memset(o, 0, sizeof *o);
    VkPhysicalDeviceProperties p;
    f->vkGetPhysicalDeviceProperties(pd, &p);
    snprintf(o->name, sizeof o->name, "%s", p.deviceName);
    const char *type = "other";
    switch (p.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: type = "discrete"; break;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: type = "integrated"; break;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: type = "virtual"; break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: type = "cpu"; break;
    default: break;
    }
    snprintf(o->type, sizeof o->type, "%s", type);
    o->api_major = VK_API_VERSION_MAJOR(p.apiVersion);
    o->api_minor = VK_API_VERSION_MINOR(p.apiVersion);
    o->api_patch = VK_API_VERSION_PATCH(p.apiVersion);
    o->max_storage_range = p.limits.maxStorageBufferRange;
    o->shared_memory = p.limits.maxComputeSharedMemorySize;
    VkPhysicalDeviceMemoryProperties mp;
    f->vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if ((mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && mp.memoryHeaps[i].size > o->memory)
            o->memory = mp.memoryHeaps[i].size;
    if (f->vkGetPhysicalDeviceProperties2 && p.apiVersion >= VK_API_VERSION_1_1) {
        VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
        VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
        if (p.apiVersion >= VK_API_VERSION_1_2) sg.pNext = &drv;
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
        f->vkGetPhysicalDeviceProperties2(pd, &p2);
        o->subgroup_size = (int)sg.subgroupSize;
        if (p.apiVersion >= VK_API_VERSION_1_2)
            snprintf(o->driver, sizeof o->driver, "%.60s %.60s", drv.driverName, drv.driverInfo);
    }
    if (f->vkGetPhysicalDeviceFeatures2 && p.apiVersion >= VK_API_VERSION_1_1) {
        VkPhysicalDeviceShaderFloat16Int8Features f16 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
        VkPhysicalDevice16BitStorageFeatures s16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
        if (p.apiVersion >= VK_API_VERSION_1_2) s16.pNext = &f16;
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s16};
        f->vkGetPhysicalDeviceFeatures2(pd, &f2);
        o->fp16 = f16.shaderFloat16 == VK_TRUE;
        o->storage16 = s16.storageBuffer16BitAccess == VK_TRUE;
    }
    o->coopmat = has_extension(f, pd, "VK_KHR_cooperative_matrix") || has_extension(f, pd, "VK_NV_cooperative_matrix");
}

/* The device's VK_NV_cooperative_matrix shapes (vk_coopmat.h), available
 * only with the extension and its feature, shaderFloat16 (the tiles are
 * fp16 in shared memory) and Vulkan 1.2 (that feature's struct; the shaders
 * are SPIR-V 1.3). OIR_VULKAN_NO_COOPMAT=1 hides them (tests). The KHR
 * extension is not used: this glslc cannot compile GL_KHR_cooperative_matrix. */
static void coopmat_query(vk_fns *f, VkPhysicalDevice pd, vk_coopmat_props *o) {
    memset(o, 0, sizeof *o);
    VkPhysicalDeviceProperties p;
    f->vkGetPhysicalDeviceProperties(pd, &p);
    const char *hide = getenv("OIR_VULKAN_NO_COOPMAT");
    if ((hide && !strcmp(hide, "1")) || p.apiVersion < VK_API_VERSION_1_2 || !f->vkGetPhysicalDeviceFeatures2 ||
        !f->vkGetPhysicalDeviceProperties2 || !f->vkGetPhysicalDeviceCooperativeMatrixPropertiesNV ||
        !has_extension(f, pd, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME))
        return;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cm = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
                                                     .pNext = &cm};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f16};
    f->vkGetPhysicalDeviceFeatures2(pd, &f2);
    if (!cm.cooperativeMatrix || !f16.shaderFloat16) return;
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    f->vkGetPhysicalDeviceProperties2(pd, &p2);
    VkCooperativeMatrixPropertiesNV cp[VK_COOPMAT_MAX_SHAPES];
    uint32_t n = VK_COOPMAT_MAX_SHAPES;
    for (uint32_t i = 0; i < n; i++) cp[i] = (VkCooperativeMatrixPropertiesNV){.sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV};
    VkResult r = f->vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, cp);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return;
    o->available = 1;
    o->subgroup_size = sg.subgroupSize;
    o->nshapes = (int)n;
    for (uint32_t i = 0; i < n; i++)
        o->shapes[i] = (vk_coopmat_shape){cp[i].MSize,
                                          cp[i].NSize,
                                          cp[i].KSize,
                                          cp[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV,
                                          cp[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV,
                                          cp[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV,
                                          cp[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV,
                                          cp[i].scope == VK_SCOPE_SUBGROUP_NV};
}

int vk_list_devices(be_device_info *out, int max, int *n, oir_error *err) {
    *n = 0;
    vk_fns f;
    VkInstance inst;
    int rc = instance_get(&f, &inst, err);
    if (rc) return rc;
    VkPhysicalDevice pd[BE_MAX_DEVICES];
    uint32_t count;
    if (!(rc = physical_devices(&f, inst, pd, &count, err)))
        for (uint32_t i = 0; i < count && (int)i < max; i++) device_info(&f, pd[i], &out[(*n)++]);
    return rc;
}

/* ---- memory ------------------------------------------------------------- */

static VkDeviceSize round_up(VkDeviceSize x, VkDeviceSize m) { return (x + m - 1) / m * m; }

/* A memory type in `bits` with all of `want`, preferring those with `prefer`; -1 if none. */
static int memory_type(vk_backend *vb, uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags prefer) {
    VkPhysicalDeviceMemoryProperties mp;
    vb->f.vkGetPhysicalDeviceMemoryProperties(vb->phys, &mp);
    int best = -1;
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++) {
        VkMemoryPropertyFlags fl = mp.memoryTypes[i].propertyFlags;
        if (!(bits & (1u << i)) || (fl & want) != want) continue;
        if ((fl & prefer) == prefer) return (int)i;
        if (best < 0) best = (int)i;
    }
    return best;
}

/* A VkBuffer of `size` bytes bound to fresh memory. */
static VkResult buffer_create(vk_backend *vb, VkDeviceSize size, int host, VkBuffer *buf, VkDeviceMemory *mem,
                              const char **what) {
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    *what = "vkCreateBuffer";
    VkResult r = vb->f.vkCreateBuffer(vb->dev, &bi, NULL, buf);
    if (r != VK_SUCCESS) return r;
    VkMemoryRequirements req;
    vb->f.vkGetBufferMemoryRequirements(vb->dev, *buf, &req);
    int type = host ? memory_type(vb, req.memoryTypeBits,
                                  VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                  VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                    : memory_type(vb, req.memoryTypeBits, 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    *what = "no suitable memory type";
    if (type < 0) r = VK_ERROR_FEATURE_NOT_PRESENT;
    if (r == VK_SUCCESS) {
        VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                   .allocationSize = req.size,
                                   .memoryTypeIndex = (uint32_t)type};
        *what = "vkAllocateMemory";
        r = vb->f.vkAllocateMemory(vb->dev, &ai, NULL, mem);
    }
    if (r == VK_SUCCESS) {
        *what = "vkBindBufferMemory";
        r = vb->f.vkBindBufferMemory(vb->dev, *buf, *mem, 0);
        if (r != VK_SUCCESS) vb->f.vkFreeMemory(vb->dev, *mem, NULL);
    }
    if (r != VK_SUCCESS) {
        vb->f.vkDestroyBuffer(vb->dev, *buf, NULL);
        *buf = VK_NULL_HANDLE;
        *mem = VK_NULL_HANDLE;
    }
    return r;
}

static void block_release(vk_backend *vb, vk_block *b) {
    if (b->buf) vb->f.vkDestroyBuffer(vb->dev, b->buf, NULL);
    if (b->mem) vb->f.vkFreeMemory(vb->dev, b->mem, NULL);
    free(b->free);
    memset(b, 0, sizeof *b);
}

/* A new block able to hold `span` bytes; its index in *out. */
static int block_new(vk_backend *vb, VkDeviceSize span, int *out, oir_error *err) {
    VkDeviceSize size = span > VK_BLOCK_MIN ? span : VK_BLOCK_MIN;
    if (vb->max_alloc && size > vb->max_alloc) size = span; /* a big buffer alone, tried as asked */
    int slot = -1;
    for (int i = 0; i < vb->nblocks && slot < 0; i++)
        if (!vb->blocks[i].mem) slot = i;
    if (slot < 0) {
        if (vb->nblocks == vb->capblocks) {
            int cap = vb->capblocks ? 2 * vb->capblocks : 8;
            vk_block *nb = realloc(vb->blocks, (size_t)cap * sizeof *nb);
            if (!nb) return oir_fail(err, OIR_E_NOMEM, "%s: out of host memory", vb->head.name);
            vb->blocks = nb;
            vb->capblocks = cap;
        }
        slot = vb->nblocks++;
        memset(&vb->blocks[slot], 0, sizeof vb->blocks[slot]);
    }
    vk_block *b = &vb->blocks[slot];
    const char *what;
    VkResult r = buffer_create(vb, size, 0, &b->buf, &b->mem, &what);
    if (r != VK_SUCCESS && size > span) { /* the minimum block did not fit: just the buffer */
        size = span;
        r = buffer_create(vb, size, 0, &b->buf, &b->mem, &what);
    }
    if (r != VK_SUCCESS)
        return oir_fail(err, vk_code(r), "%s: a buffer of %llu bytes: %s: %s", vb->head.name,
                        (unsigned long long)span, what, vk_result_name(r));
    b->free = malloc(8 * sizeof *b->free);
    if (!b->free) {
        block_release(vb, b);
        return oir_fail(err, OIR_E_NOMEM, "%s: out of host memory", vb->head.name);
    }
    b->capfree = 8;
    b->nfree = 1;
    b->free[0] = (vk_range){0, size};
    b->size = size;
    b->live = 0;
    *out = slot;
    return OIR_OK;
}

/* First fit in block b; 1 when carved. */
static int block_carve(vk_block *b, VkDeviceSize span, VkDeviceSize *off) {
    for (int i = 0; i < b->nfree; i++) {
        if (b->free[i].size < span) continue;
        *off = b->free[i].off;
        b->free[i].off += span;
        b->free[i].size -= span;
        if (!b->free[i].size) {
            memmove(b->free + i, b->free + i + 1, (size_t)(b->nfree - i - 1) * sizeof *b->free);
            b->nfree--;
        }
        b->live++;
        return 1;
    }
    return 0;
}

/* Gives [off, off + span) back, merging with its neighbours; 0 when the
 * free list cannot grow (the range is then lost until the block goes). */
static int block_return(vk_block *b, VkDeviceSize off, VkDeviceSize span) {
    int i = 0;
    while (i < b->nfree && b->free[i].off < off) i++;
    int merge_prev = i > 0 && b->free[i - 1].off + b->free[i - 1].size == off;
    int merge_next = i < b->nfree && off + span == b->free[i].off;
    b->live--;
    if (merge_prev && merge_next) {
        b->free[i - 1].size += span + b->free[i].size;
        memmove(b->free + i, b->free + i + 1, (size_t)(b->nfree - i - 1) * sizeof *b->free);
        b->nfree--;
    } else if (merge_prev) {
        b->free[i - 1].size += span;
    } else if (merge_next) {
        b->free[i].off = off;
        b->free[i].size += span;
    } else {
        if (b->nfree == b->capfree) {
            vk_range *nf = realloc(b->free, (size_t)b->capfree * 2 * sizeof *nf);
            if (!nf) return 0;
            b->free = nf;
            b->capfree *= 2;
        }
        memmove(b->free + i + 1, b->free + i, (size_t)(b->nfree - i) * sizeof *b->free);
        b->free[i] = (vk_range){off, span};
        b->nfree++;
    }
    return 1;
}

int vk_buffer_alloc(oir_backend *be, size_t bytes, be_buffer **out, oir_error *err) {
    vk_backend *vb = (vk_backend *)be;
    VkDeviceSize span = round_up(bytes, VK_ALIGN), off = 0;
    vk_buffer *vbuf = calloc(1, sizeof *vbuf);
    if (!vbuf) return oir_fail(err, OIR_E_NOMEM, "%s: out of host memory", be->name);
    int blk = -1;
    for (int i = 0; i < vb->nblocks && blk < 0; i++)
        if (vb->blocks[i].mem && block_carve(&vb->blocks[i], span, &off)) blk = i;
    if (blk < 0) {
        int rc = block_new(vb, span, &blk, err);
        if (rc) {
            free(vbuf);
            return rc;
        }
        block_carve(&vb->blocks[blk], span, &off);
    }
    vbuf->head.size = bytes;
    vbuf->head.owner = be;
    vbuf->block = blk;
    vbuf->off = off;
    vbuf->span = span;
    *out = &vbuf->head;
    return OIR_OK;
}

void vk_buffer_free(oir_backend *be, be_buffer *b) {
    vk_backend *vb = (vk_backend *)be;
    vk_buffer *vbuf = (vk_buffer *)b;
    if (vb->recording) vk_flush(vb); /* queued commands may use it */
    vk_block *blk = &vb->blocks[vbuf->block];
    block_return(blk, vbuf->off, vbuf->span);
    if (!blk->live && vbuf->block > 0) block_release(vb, blk); /* block 0 stays as the pool */
    free(vbuf);
}

void *vk_buffer_host(oir_backend *be, be_buffer *b) { return NULL; }

void vk_view_abs(vk_backend *vb, be_view v, VkBuffer *buf, VkDeviceSize *off) {
    const vk_buffer *b = (const vk_buffer *)v.buf;
    *buf = vb->blocks[b->block].buf;
    *off = b->off + v.off;
}

int vk_bind_view(vk_backend *vb, const char *op, const char *name, be_view v, size_t bytes, int unit,
                 vk_bind *out) {
    const vk_buffer *b = (const vk_buffer *)v.buf;
    const vk_block *blk = &vb->blocks[b->block];
    VkDeviceSize abs = b->off + v.off;
    VkDeviceSize base = abs / vb->off_align * vb->off_align;
    VkDeviceSize lead = abs - base;
    VkDeviceSize range = round_up(lead + bytes, 4);
    if (base + range > blk->size) range = blk->size - base;
    if (range > vb->max_range)
        return be_fail(&vb->head, OIR_E_UNSUPPORTED,
                       "%s: %s: operand %s spans %llu bytes, over this device's maxStorageBufferRange of %llu "
                       "bytes (split the batch)",
                       vb->head.name, op, name, (unsigned long long)(lead + bytes),
                       (unsigned long long)vb->max_range);
    *out = (vk_bind){blk->buf, base, range, (uint32_t)(lead / (VkDeviceSize)unit)};
    return OIR_OK;
}

/* ---- the command stream ------------------------------------------------- */

static void barrier(vk_backend *vb, VkPipelineStageFlags dst_stage, VkAccessFlags dst_access) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = dst_access};
    vb->f.vkCmdPipelineBarrier(vb->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                               dst_stage, 0, 1, &mb, 0, NULL, 0, NULL);
}

static void barrier_next(vk_backend *vb) {
    barrier(vb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                VK_ACCESS_TRANSFER_WRITE_BIT);
}

static int begin_recording(vk_backend *vb) {
    if (vb->recording) return OIR_OK;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    int rc = vk_check(vb, vb->f.vkBeginCommandBuffer(vb->cmd, &bi), "vkBeginCommandBuffer");
    if (!rc) vb->recording = 1;
    return rc;
}

int vk_flush(vk_backend *vb) {
    int rc = OIR_OK;
    if (vb->recording) {
        barrier(vb, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
        rc = vk_check(vb, vb->f.vkEndCommandBuffer(vb->cmd), "vkEndCommandBuffer");
        if (!rc) {
            VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &vb->cmd};
            rc = vk_check(vb, vb->f.vkQueueSubmit(vb->queue, 1, &si, vb->fence), "vkQueueSubmit");
            if (!rc) {
                rc = vk_check(vb, vb->f.vkWaitForFences(vb->dev, 1, &vb->fence, VK_TRUE, UINT64_MAX),
                              "vkWaitForFences");
                vb->f.vkResetFences(vb->dev, 1, &vb->fence);
            }
        }
        vb->f.vkResetCommandPool(vb->dev, vb->cmd_pool, 0);
        for (int i = 0; i <= vb->dpool_cur && i < vb->ndpools; i++) vb->f.vkResetDescriptorPool(vb->dev, vb->dpools[i], 0);
        vb->dpool_cur = 0;
        vb->recording = 0;
    }
    vb->staging_used = 0;
    return rc;
}

int vk_staging_take(vk_backend *vb, size_t bytes, void **host, vk_bind *out) {
    VkDeviceSize need = round_up(bytes ? bytes : 4, VK_ALIGN);
    if (need > vb->staging_size)
        return be_fail(&vb->head, OIR_E_INTERNAL, "%s: %zu bytes of parameters exceed the staging buffer (%llu)",
                       vb->head.name, bytes, (unsigned long long)vb->staging_size);
    if (vb->staging_used + need > vb->staging_size) {
        int rc = vk_flush(vb);
        if (rc) return rc;
    }
    *host = vb->staging + vb->staging_used;
    *out = (vk_bind){vb->staging_buf, vb->staging_used, need, 0};
    vb->staging_used += need;
    return OIR_OK;
}

int vk_copy_raw(vk_backend *vb, VkBuffer src, VkDeviceSize src_off, VkBuffer dst, VkDeviceSize dst_off,
                VkDeviceSize bytes) {
    int rc = begin_recording(vb);
    if (rc) return rc;
    VkBufferCopy region = {src_off, dst_off, bytes};
    vb->f.vkCmdCopyBuffer(vb->cmd, src, dst, 1, &region);
    barrier_next(vb);
    return OIR_OK;
}

/* ---- pipelines ---------------------------------------------------------- */

static int layouts_for(vk_backend *vb, int nb) {
    if (vb->pipe_layouts[nb]) return OIR_OK;
    VkDescriptorSetLayoutBinding bind[VK_MAX_BINDINGS];
    for (int i = 0; i < nb; i++)
        bind[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                                 .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                                 .descriptorCount = 1,
                                                 .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dl = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = (uint32_t)nb,
                                          .pBindings = bind};
    int rc = vk_check(vb, vb->f.vkCreateDescriptorSetLayout(vb->dev, &dl, NULL, &vb->set_layouts[nb]),
                      "vkCreateDescriptorSetLayout");
    if (rc) return rc;
    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, VK_PUSH_BYTES};
    VkPipelineLayoutCreateInfo pl = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = &vb->set_layouts[nb],
                                     .pushConstantRangeCount = 1,
                                     .pPushConstantRanges = &pr};
    return vk_check(vb, vb->f.vkCreatePipelineLayout(vb->dev, &pl, NULL, &vb->pipe_layouts[nb]),
                    "vkCreatePipelineLayout");
}

static int pipeline_get(vk_backend *vb, int shader, const int *spec, int nspec, int nb, VkPipeline *out) {
    for (int i = 0; i < vb->npipes; i++) {
        const vk_pipe *p = &vb->pipes[i];
        if (p->shader == shader && p->nspec == nspec && (!nspec || !memcmp(p->spec, spec, (size_t)nspec * sizeof *spec))) {
            *out = p->pipe;
            return OIR_OK;
        }
    }
    int rc = layouts_for(vb, nb);
    if (rc) return rc;
    if (!vb->modules[shader]) {
        const vk_spirv *s = NULL;
        for (int i = 0; i < vk_spirv_count && !s; i++)
            if (!strcmp(vk_spirv_table[i].name, vk_shader_names[shader])) s = &vk_spirv_table[i];
        if (!s)
            return be_fail(&vb->head, OIR_E_INTERNAL, "%s: shader %s is not in this build", vb->head.name,
                           vk_shader_names[shader]);
        VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                       .codeSize = s->bytes,
                                       .pCode = s->code};
        if ((rc = vk_check(vb, vb->f.vkCreateShaderModule(vb->dev, &mi, NULL, &vb->modules[shader]),
                           "vkCreateShaderModule")))
            return rc;
    }
    if (vb->npipes == vb->cappipes) {
        int cap = vb->cappipes ? 2 * vb->cappipes : 16;
        vk_pipe *np = realloc(vb->pipes, (size_t)cap * sizeof *np);
        if (!np) return be_fail(&vb->head, OIR_E_NOMEM, "%s: out of host memory", vb->head.name);
        vb->pipes = np;
        vb->cappipes = cap;
    }
    VkSpecializationMapEntry me[4];
    for (int i = 0; i < nspec; i++) me[i] = (VkSpecializationMapEntry){(uint32_t)i, (uint32_t)(i * 4), 4};
    VkSpecializationInfo si = {(uint32_t)nspec, me, (size_t)nspec * 4, spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = vb->modules[shader],
                  .pName = "main",
                  .pSpecializationInfo = nspec ? &si : NULL},
        .layout = vb->pipe_layouts[nb]};
    vk_pipe *p = &vb->pipes[vb->npipes];
    if ((rc = vk_check(vb, vb->f.vkCreateComputePipelines(vb->dev, VK_NULL_HANDLE, 1, &ci, NULL, &p->pipe),
                       "vkCreateComputePipelines")))
        return rc;
    p->shader = shader;
    p->nspec = nspec;
    memset(p->spec, 0, sizeof p->spec);
    if (nspec) memcpy(p->spec, spec, (size_t)nspec * sizeof *spec);
    vb->npipes++;
    *out = p->pipe;
    return OIR_OK;
}

#define VK_POOL_SETS 512

static int descriptor_set(vk_backend *vb, int nb, VkDescriptorSet *set) {
    for (;;) {
        if (vb->dpool_cur == vb->ndpools) {
            VkDescriptorPool *np = realloc(vb->dpools, (size_t)(vb->ndpools + 1) * sizeof *np);
            if (!np) return be_fail(&vb->head, OIR_E_NOMEM, "%s: out of host memory", vb->head.name);
            vb->dpools = np;
            VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_POOL_SETS * VK_MAX_BINDINGS};
            VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                             .maxSets = VK_POOL_SETS,
                                             .poolSizeCount = 1,
                                             .pPoolSizes = &ps};
            int rc = vk_check(vb, vb->f.vkCreateDescriptorPool(vb->dev, &pi, NULL, &vb->dpools[vb->ndpools]),
                              "vkCreateDescriptorPool");
            if (rc) return rc;
            vb->ndpools++;
        }
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                          .descriptorPool = vb->dpools[vb->dpool_cur],
                                          .descriptorSetCount = 1,
                                          .pSetLayouts = &vb->set_layouts[nb]};
        VkResult r = vb->f.vkAllocateDescriptorSets(vb->dev, &ai, set);
        if (r == VK_SUCCESS) return OIR_OK;
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
            return vk_check(vb, r, "vkAllocateDescriptorSets");
        vb->dpool_cur++; /* this pool is full: the next one */
    }
}

void vk_groups_2d(vk_backend *vb, uint64_t groups, uint32_t *gx, uint32_t *gy) {
    uint64_t maxx = vb->limits.maxComputeWorkGroupCount[0];
    if (groups <= maxx) {
        *gx = (uint32_t)(groups ? groups : 1);
        *gy = 1;
    } else {
        *gx = (uint32_t)maxx;
        *gy = (uint32_t)((groups + maxx - 1) / maxx);
    }
}

int vk_dispatch(vk_backend *vb, int shader, const int *spec, int nspec, const vk_bind *b, int nb,
                const void *params, size_t params_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
    if (vb->head.status) return vb->head.status;
    const uint32_t *mx = vb->limits.maxComputeWorkGroupCount;
    if (gx > mx[0] || gy > mx[1] || gz > mx[2])
        return be_fail(&vb->head, OIR_E_UNSUPPORTED, "%s: %s: %u x %u x %u workgroups exceed the device's %u x %u x %u",
                       vb->head.name, vk_shader_names[shader], gx, gy, gz, mx[0], mx[1], mx[2]);
    if ((size_t)nb * 4 + params_bytes > VK_PUSH_BYTES)
        return be_fail(&vb->head, OIR_E_INTERNAL, "%s: %s: push constants too large", vb->head.name,
                       vk_shader_names[shader]);
    VkPipeline pipe = VK_NULL_HANDLE;
    VkDescriptorSet set = VK_NULL_HANDLE;
    int rc;
    if ((rc = pipeline_get(vb, shader, spec, nspec, nb, &pipe)) || (rc = begin_recording(vb)) ||
        (rc = descriptor_set(vb, nb, &set)))
        return rc;
    VkDescriptorBufferInfo info[VK_MAX_BINDINGS];
    VkWriteDescriptorSet w[VK_MAX_BINDINGS];
    uint32_t push[VK_PUSH_BYTES / 4] = {0};
    for (int i = 0; i < nb; i++) {
        info[i] = (VkDescriptorBufferInfo){b[i].buf, b[i].off, b[i].range};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &info[i]};
        push[i] = b[i].elem;
    }
    memcpy(push + nb, params, params_bytes);
    vb->f.vkUpdateDescriptorSets(vb->dev, (uint32_t)nb, w, 0, NULL);
    vb->f.vkCmdBindPipeline(vb->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vb->f.vkCmdBindDescriptorSets(vb->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vb->pipe_layouts[nb], 0, 1, &set, 0,
                                  NULL);
    vb->f.vkCmdPushConstants(vb->cmd, vb->pipe_layouts[nb], VK_SHADER_STAGE_COMPUTE_BIT, 0, VK_PUSH_BYTES, push);
    vb->f.vkCmdDispatch(vb->cmd, gx, gy, gz);
    barrier_next(vb);
    return OIR_OK;
}

/* ---- create / destroy --------------------------------------------------- */

void vk_destroy(oir_backend *be) {
    vk_backend *vb = (vk_backend *)be;
    if (vb->dev) {
        if (vb->recording) vk_flush(vb);
        vb->f.vkDeviceWaitIdle(vb->dev);
        for (int i = 0; i < vb->npipes; i++) vb->f.vkDestroyPipeline(vb->dev, vb->pipes[i].pipe, NULL);
        for (int i = 0; i < VK_SHADER_COUNT; i++)
            if (vb->modules[i]) vb->f.vkDestroyShaderModule(vb->dev, vb->modules[i], NULL);
        for (int i = 0; i <= VK_MAX_BINDINGS; i++) {
            if (vb->pipe_layouts[i]) vb->f.vkDestroyPipelineLayout(vb->dev, vb->pipe_layouts[i], NULL);
            if (vb->set_layouts[i]) vb->f.vkDestroyDescriptorSetLayout(vb->dev, vb->set_layouts[i], NULL);
        }
        for (int i = 0; i < vb->ndpools; i++) vb->f.vkDestroyDescriptorPool(vb->dev, vb->dpools[i], NULL);
        if (vb->fence) vb->f.vkDestroyFence(vb->dev, vb->fence, NULL);
        if (vb->cmd_pool) vb->f.vkDestroyCommandPool(vb->dev, vb->cmd_pool, NULL);
        if (vb->staging) vb->f.vkUnmapMemory(vb->dev, vb->staging_mem);
        if (vb->staging_buf) vb->f.vkDestroyBuffer(vb->dev, vb->staging_buf, NULL);
        if (vb->staging_mem) vb->f.vkFreeMemory(vb->dev, vb->staging_mem, NULL);
        for (int i = 0; i < vb->nblocks; i++) block_release(vb, &vb->blocks[i]);
        vb->f.vkDestroyDevice(vb->dev, NULL);
    } /* the instance is the process's (instance_get) */
    free(vb->pipes);
    free(vb->dpools);
    free(vb->blocks);
    free(vb);
}

/* Device, queue, staging, command pool and fence of an opened instance. */
static int device_open(vk_backend *vb, int index, int fp16_weights, oir_error *err) {
    VkPhysicalDevice pd[BE_MAX_DEVICES];
    uint32_t count;
    int rc = physical_devices(&vb->f, vb->instance, pd, &count, err);
    if (rc) return rc;
    if (index < 0 || (uint32_t)index >= count) {
        be_device_info d0;
        device_info(&vb->f, pd[0], &d0);
        return oir_fail(err, OIR_E_UNSUPPORTED, "vulkan:%d: no such device (%u found; vulkan:0 is %s; oir info --devices lists them)",
                        index, count, d0.name);
    }
    vb->phys = pd[index];
    be_device_info info;
    device_info(&vb->f, vb->phys, &info);
    snprintf(vb->head.name, sizeof vb->head.name, "vulkan:%d (%.120s)", index, info.name);
    VkPhysicalDeviceProperties props;
    vb->f.vkGetPhysicalDeviceProperties(vb->phys, &props);
    vb->limits = props.limits;
    vb->max_range = props.limits.maxStorageBufferRange;
    /* OIR_VULKAN_MAX_RANGE=BYTES lowers the range (tests of the windows
     * and refusals at small sizes; never raises it) */
    const char *mr = getenv("OIR_VULKAN_MAX_RANGE");
    if (mr && *mr) {
        unsigned long long v = strtoull(mr, NULL, 10);
        if (v >= 4096 && v < vb->max_range) vb->max_range = (VkDeviceSize)v / VK_ALIGN * VK_ALIGN;
    }
    vb->head.max_view_bytes = (size_t)vb->max_range;
    vb->off_align = props.limits.minStorageBufferOffsetAlignment ? props.limits.minStorageBufferOffsetAlignment : 4;
    if (vb->off_align < 4) vb->off_align = 4;
    if (vb->off_align > VK_ALIGN)
        return oir_fail(err, OIR_E_UNSUPPORTED, "%s: minStorageBufferOffsetAlignment %llu > %llu", vb->head.name,
                        (unsigned long long)vb->off_align, (unsigned long long)VK_ALIGN);
    if (vb->f.vkGetPhysicalDeviceProperties2 && props.apiVersion >= VK_API_VERSION_1_1) {
        VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
        vb->f.vkGetPhysicalDeviceProperties2(vb->phys, &p2);
        vb->max_alloc = m3.maxMemoryAllocationSize;
    }

    uint32_t nq = 0;
    vb->f.vkGetPhysicalDeviceQueueFamilyProperties(vb->phys, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32) nq = 32;
    vb->f.vkGetPhysicalDeviceQueueFamilyProperties(vb->phys, &nq, qf);
    int family = -1;
    for (uint32_t i = 0; i < nq && family < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) family = (int)i;
    if (family < 0) return oir_fail(err, OIR_E_UNSUPPORTED, "%s: no compute queue", vb->head.name);
    vb->queue_family = (uint32_t)family;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = vb->queue_family,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1, .pQueueCreateInfos = &qi};
    /* fp16 weights: the GEMM shaders' *_a16 / *_b16 variants read fp16
     * buffers (SPIR-V StorageBuffer16BitAccess, core in Vulkan 1.1).
     * OIR_VULKAN_NO_STORAGE16=1 hides the feature (tests of the refusal). */
    VkPhysicalDevice16BitStorageFeatures s16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
                                                .storageBuffer16BitAccess = VK_TRUE};
    if (fp16_weights) {
        const char *hide = getenv("OIR_VULKAN_NO_STORAGE16");
        if (!info.storage16 || (hide && !strcmp(hide, "1")))
            return oir_fail(err, OIR_E_UNSUPPORTED,
                            "%s: fp16 weight storage needs storageBuffer16BitAccess (16-bit storage), which this "
                            "device does not offer (oir info --devices); run without fp16-weights",
                            vb->head.name);
        di.pNext = &s16;
        vb->head.fp16_weights = 1;
    }
    /* the GEMMs' path: OIR_VULKAN_COOPMAT=0|1|auto (vk_pick_gemm_path); when
     * cooperative, the extension, its feature and shaderFloat16 are enabled */
    vk_coopmat_mode cm_mode;
    const char *cm_env = getenv("OIR_VULKAN_COOPMAT");
    if (vk_coopmat_mode_parse(cm_env, &cm_mode))
        return oir_fail(err, OIR_E_ARG, "OIR_VULKAN_COOPMAT=%.40s: expected 0, 1 or auto", cm_env);
    vk_coopmat_props cm_props;
    coopmat_query(&vb->f, vb->phys, &cm_props);
    vb->gemm_path = vk_pick_gemm_path(&cm_props, cm_mode, fp16_weights);
    if (cm_mode == VK_COOPMAT_ON && vb->gemm_path != VK_GEMM_COOPMAT)
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s: OIR_VULKAN_COOPMAT=1 needs cooperative matrices (VK_NV_cooperative_matrix with an fp16 x "
                        "fp16 -> fp32 subgroup shape, shaderFloat16, Vulkan 1.2), which this device does not offer%s; "
                        "use OIR_VULKAN_COOPMAT=auto or 0",
                        vb->head.name, cm_props.available ? " (no usable shape)" : "");
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cm_feat = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV, .cooperativeMatrix = VK_TRUE};
    VkPhysicalDeviceShaderFloat16Int8Features cm_f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES, .shaderFloat16 = VK_TRUE, .pNext = &cm_feat};
    const char *cm_ext[] = {VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME};
    if (vb->gemm_path == VK_GEMM_COOPMAT) {
        vk_coopmat_pick_shape(&cm_props, &vb->coopmat_shape);
        cm_feat.pNext = (void *)di.pNext;
        di.pNext = &cm_f16;
        di.enabledExtensionCount = 1;
        di.ppEnabledExtensionNames = cm_ext;
    }
    VkResult r = vb->f.vkCreateDevice(vb->phys, &di, NULL, &vb->dev);
    if (r != VK_SUCCESS)
        return oir_fail(err, OIR_E_UNSUPPORTED, "%s: vkCreateDevice failed: %s", vb->head.name, vk_result_name(r));
#define VK_LOAD_DEVICE(fn)                                                                                \
    if (!(vb->f.fn = (PFN_##fn)vb->f.vkGetDeviceProcAddr(vb->dev, #fn)))                                  \
        return oir_fail(err, OIR_E_UNSUPPORTED, "%s: the driver lacks %s", vb->head.name, #fn);
    VK_DEVICE_FNS(VK_LOAD_DEVICE)
#undef VK_LOAD_DEVICE
    vb->f.vkGetDeviceQueue(vb->dev, vb->queue_family, 0, &vb->queue);

    /* staging: at most a quarter of maxStorageBufferRange, so it binds whole */
    vb->staging_size = VK_STAGING_BYTES < vb->max_range / 4 ? VK_STAGING_BYTES : vb->max_range / 4 / VK_ALIGN * VK_ALIGN;
    const char *what;
    r = buffer_create(vb, vb->staging_size, 1, &vb->staging_buf, &vb->staging_mem, &what);
    if (r == VK_SUCCESS) {
        void *p = NULL;
        what = "vkMapMemory";
        r = vb->f.vkMapMemory(vb->dev, vb->staging_mem, 0, VK_WHOLE_SIZE, 0, &p);
        vb->staging = p;
    }
    if (r != VK_SUCCESS)
        return oir_fail(err, vk_code(r), "%s: the staging buffer: %s: %s", vb->head.name, what, vk_result_name(r));

    VkCommandPoolCreateInfo cp = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT,
                                  .queueFamilyIndex = vb->queue_family};
    if ((r = vb->f.vkCreateCommandPool(vb->dev, &cp, NULL, &vb->cmd_pool)) != VK_SUCCESS)
        return oir_fail(err, vk_code(r), "%s: vkCreateCommandPool: %s", vb->head.name, vk_result_name(r));
    VkCommandBufferAllocateInfo ca = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = vb->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    if ((r = vb->f.vkAllocateCommandBuffers(vb->dev, &ca, &vb->cmd)) != VK_SUCCESS)
        return oir_fail(err, vk_code(r), "%s: vkAllocateCommandBuffers: %s", vb->head.name, vk_result_name(r));
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((r = vb->f.vkCreateFence(vb->dev, &fi, NULL, &vb->fence)) != VK_SUCCESS)
        return oir_fail(err, vk_code(r), "%s: vkCreateFence: %s", vb->head.name, vk_result_name(r));
    return OIR_OK;
}

int vk_backend_create(oir_backend **out, int index, int fp16_weights, oir_error *err) {
    *out = NULL;
    vk_backend *vb = calloc(1, sizeof *vb);
    if (!vb) return oir_fail(err, OIR_E_NOMEM, "vulkan: out of memory");
    vb->head.ops = &vk_ops;
    snprintf(vb->head.name, sizeof vb->head.name, "vulkan:%d", index);
    int rc = instance_get(&vb->f, &vb->instance, err);
    if (!rc) rc = device_open(vb, index, fp16_weights, err);
    if (rc) {
        vk_destroy(&vb->head);
        return rc;
    }
    *out = &vb->head;
    return OIR_OK;
}
