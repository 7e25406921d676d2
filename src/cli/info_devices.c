/* oir info --devices: the backends this build has and the devices found
 * (the CPU always; every Vulkan device the loader reports, or why there is
 * none: no Vulkan in this build, no loader, no driver, no device). */
#include <stdio.h>

#include "cli/info.h"
#include "core/backend.h"

static void print_size(unsigned long long bytes) {
    if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
        printf("%llu GiB", bytes >> 30);
    else if (bytes >= (1ull << 20))
        printf("%llu MiB", bytes >> 20);
    else
        printf("%llu KiB", bytes >> 10);
}

int info_devices(void) {
    printf("backends:\n  %-10s the CPU (%d threads)\n", "cpu", oir_get_threads());
    be_device_info d[BE_MAX_DEVICES];
    int n = 0;
    oir_error err = {0};
    if (be_vulkan_devices(d, BE_MAX_DEVICES, &n, &err)) {
        printf("  %-10s none: %s\n", "vulkan", err.message);
    } else {
        for (int i = 0; i < n; i++) {
            char id[24];
            snprintf(id, sizeof id, "vulkan:%d", i);
            printf("  %-10s %s\n  %-10s   %s device, Vulkan %u.%u.%u, ", id, d[i].name, "", d[i].type, d[i].api_major,
                   d[i].api_minor, d[i].api_patch);
            print_size(d[i].memory);
            printf(" device memory, subgroup size %d, fp16 %s, 16-bit storage %s, cooperative matrix %s\n  %-10s   "
                   "largest storage buffer ",
                   d[i].subgroup_size, d[i].fp16 ? "yes" : "no", d[i].storage16 ? "yes" : "no",
                   d[i].coopmat ? "yes" : "no", "");
            print_size(d[i].max_storage_range);
            printf(", shared memory ");
            print_size(d[i].shared_memory);
            if (d[i].driver[0]) printf(", driver %s", d[i].driver);
            printf("\n");
        }
    }
    printf("Where the models run: --device vulkan[:N] (or OIR_DEVICE) runs the UNet, the VAE, the text\n"
           "encoder and the CLIP scorer on that device (report.json's \"device\" says where each ran;\n"
           "docs/BACKENDS.md).\n");
    return 0;
}
