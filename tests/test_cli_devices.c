/* oir info --devices: the CPU backend always; with Vulkan in the build,
 * every device the loader finds (lavapipe in CI) or, when the loader or the
 * driver is missing, a line saying which; without Vulkan in the build,
 * "no Vulkan in this build". --devices with a PATH is a usage error. */
#include "cli_runner.h"
#include "core/backend.h"

int main(int argc, char **argv) {
    (void)argc;
    (void)cr_path;
    if (cr_init(argv[0])) {
        CHECK(0, "cannot set up the CLI runner");
        return th_summary();
    }
    int rc = cr_run("info", "--devices", NULL);
    CHECK(rc == 0, "oir info --devices: exit %d (%s)", rc, cr_err);
    CHECK(strstr(cr_out, "backends:\n  cpu ") != NULL, "the CPU backend is listed: \"%s\"", cr_out);
    CHECK(strstr(cr_out, "runs the UNet, the VAE, the text") != NULL, "says where the models run: \"%s\"", cr_out);
    const char *skip = getenv("OIR_TEST_VULKAN");
    if (!be_have_vulkan()) {
        CHECK(strstr(cr_out, "vulkan     none: no Vulkan in this build") != NULL,
              "a build without Vulkan says so: \"%s\"", cr_out);
    } else {
        if (!(skip && !strcmp(skip, "skip")))
            CHECK(strstr(cr_out, "  vulkan:0   ") && strstr(cr_out, " device, Vulkan 1.") &&
                      strstr(cr_out, "subgroup size") && strstr(cr_out, "cooperative matrix"),
                  "vulkan:0 is listed with its properties (lavapipe: scripts/deps.sh): \"%s\"", cr_out);
        /* no loader */
        setenv("OIR_VULKAN_LOADER", "/nonexistent/libvulkan.so.1", 1);
        rc = cr_run("info", "--devices", NULL);
        unsetenv("OIR_VULKAN_LOADER");
        CHECK(rc == 0 && strstr(cr_out, "vulkan     none: no Vulkan loader"), "no loader: exit %d \"%s\"", rc, cr_out);
        /* a loader without drivers */
        setenv("VK_ICD_FILENAMES", "/nonexistent/icd.json", 1);
        setenv("VK_DRIVER_FILES", "/nonexistent/icd.json", 1);
        rc = cr_run("info", "--devices", NULL);
        unsetenv("VK_ICD_FILENAMES");
        unsetenv("VK_DRIVER_FILES");
        CHECK(rc == 0 && strstr(cr_out, "vulkan     none: no Vulkan driver"), "no driver: exit %d \"%s\"", rc, cr_out);
    }
    rc = cr_run("info", "--devices", "models/tiny-shapes", NULL);
    cr_expect_error("--devices with a PATH", rc, "info", "--devices");
    CHECK(rc == 2, "--devices with a PATH: exit %d, expected 2", rc);
    cr_cleanup();
    return th_summary();
}
