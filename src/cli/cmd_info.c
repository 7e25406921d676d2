/* oir info PATH [--tensors]: a summary of a model first (kind, version
 * guess, image size, components with parameters and dtypes, tokenizer),
 * then a folder's component details; the tensors only with --tensors.
 * Pickle files are refused as every command refuses them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/info.h"

static void usage(FILE *to) {
    fprintf(to, "usage: oir info PATH [--tensors]\n"
                "       oir info --devices\n\n"
                "PATH is a model: a diffusers folder, a single-file .safetensors checkpoint, a\n"
                "Hugging Face CLIP folder or one component's folder. Prints a summary first: the\n"
                "kind, a guess at the Stable Diffusion version, the native image size, each\n"
                "component's parameter count and dtypes, the tokenizer it would use (its folder\n"
                "or the built-in CLIP vocabulary) and the total; for a folder then each\n"
                "component's config and weight files. Any other .safetensors file: its tensor\n"
                "and parameter counts. Pickle files (.ckpt, .bin, .pt, .pth, ...) are refused,\n"
                "with how to convert them, as by every command.\n\n"
                "  --tensors         also list every tensor (name, dtype, shape)\n"
                "  --verbose         the same as --tensors\n"
                "  --devices         list the backends instead: the CPU and each Vulkan device\n"
                "                    (name, type, memory, subgroup size, fp16, cooperative\n"
                "                    matrix), or why there is none\n");
}

int cmd_info(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    int tensors = 0, verbose = 0, devices = 0, npos = 0;
    const char *pos[1] = {NULL};
    const cli_opt opts[] = {{"--tensors", CLI_FLAG, &tensors, 0, 0},
                            {"--verbose", CLI_FLAG, &verbose, 0, 0},
                            {"--devices", CLI_FLAG, &devices, 0, 0}};
    oir_error err = {0};
    if (cli_parse(argc, argv, opts, 3, pos, 1, &npos, &err)) return cli_report("info", &err);
    if (devices) {
        if (!npos && !tensors && !verbose) return info_devices();
        oir_fail(&err, OIR_E_ARG, "--devices lists the backends: it takes no PATH, --tensors or --verbose");
        return cli_report("info", &err);
    }
    if (npos != 1) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    tensors |= verbose;
    const char *path = pos[0];
    struct stat sb;
    if (stat(path, &sb) != 0) {
        oir_fail(&err, OIR_E_IO, "%s: no such file or folder", path);
        return cli_report("info", &err);
    }
    if (model_path_detect(path) == MODEL_PATH_PICKLE) { /* never opened: the loader's refusal */
        loader_refuse_pickle(path, &err);
        return cli_report("info", &err);
    }
    if (S_ISDIR(sb.st_mode)) {
        sd_plan plan;
        if (sd_plan_folder(&plan, path, NULL, &err)) return cli_report("info", &err);
        int rc = info_summary_folder(path, &plan, &err);
        if (!rc) rc = info_model_folder(path, &err);
        if (!rc && tensors) rc = info_folder_tensors(&plan, &err);
        if (!rc) rc = info_folder_pickle(&plan, &err);
        sd_plan_free(&plan);
        return rc ? cli_report("info", &err) : 0;
    }
    st_file *f = NULL;
    if (st_open(&f, path, &err)) return cli_report("info", &err);
    info_summary_file(path, f, tensors);
    st_close(f);
    return 0;
}
