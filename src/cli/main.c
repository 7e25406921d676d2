#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/threads.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static int cmd_version(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: oir version\n\nPrints the version of oir.\n");
        return 0;
    }
    printf("oir %s\n", oir_version());
    return 0;
}

static const command commands[] = {
    {"version", cmd_version, "print the version"},
    {"search", cmd_search, "one editing pair: every candidate and the search metric's choice"},
    {"edit", cmd_edit, "several editing pairs: object-aware inversion and reassembly (OIR)"},
    {"batch", cmd_batch, "many cases from a manifest: shards, resume, one summary (docs/cluster.md)"},
    {"serve", cmd_serve, "the local web editor: open a photo, mark objects, watch the search, pick, download"},
    {"mask", cmd_mask, "one editing pair's mask, inferred from the model (image + prompt + pair -> PNG)"},
    {"info", cmd_info, "list the tensors of a .safetensors file or the parts of a model folder"},
    {"generate", cmd_generate, "prompt -> image (DDIM, classifier-free guidance)"},
    {"reconstruct", cmd_reconstruct, "image -> inversion -> denoising -> image, with the PSNR"},
    {"eval", cmd_eval, "run one model component on tensors from a file (parity checks)"},
};

static void usage(FILE *to) {
    fprintf(to, "oir %s — object-aware inversion and reassembly for image editing\n\n"
                "usage: oir <command> [options]   (oir <command> --help for details)\n\ncommands:\n",
            oir_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(to, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int cli_report(const char *cmd, const oir_error *err) {
    fprintf(stderr, "oir %s: %s\n", cmd, err->message[0] ? err->message : oir_status_name(err->code));
    return err->code == OIR_E_ARG ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
}

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

int main(int argc, char **argv) {
    threads_init(); /* OIR_THREADS, default: all cores */
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(1, argv);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "oir: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
