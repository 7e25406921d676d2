/* oir info PATH: the tensors of a .safetensors file, or the parts of a model folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "io/safetensors.h"
#include "models/tokenizer.h"

static void usage(FILE *to) {
    fprintf(to, "usage: oir info PATH\n\n"
                "PATH is a .safetensors file: lists every tensor (name, dtype, shape) and the\n"
                "total parameter count. PATH is a model folder (diffusers pipeline, single\n"
                "component, or Hugging Face CLIP): lists the components found.\n");
}

static int info_safetensors(const char *path) {
    st_file *f = NULL;
    oir_error err = {0};
    if (st_open(&f, path, &err)) return cli_report("info", &err);
    long long total = 0;
    size_t bytes = 0;
    char shape[128];
    printf("%-64s %-5s %s\n", "tensor", "dtype", "shape");
    for (int i = 0; i < st_count(f); i++) {
        const tensor *t = st_tensor_at(f, i);
        printf("%-64s %-5s %s\n", st_name_at(f, i), dtype_name(t->type),
               tensor_shape_str(t, shape, sizeof shape));
        total += tensor_numel(t);
        bytes += tensor_nbytes(t);
    }
    printf("%d tensors, %lld parameters (%.2f M), %.1f MiB of data\n", st_count(f), total,
           total / 1e6, bytes / 1048576.0);
    /* An SD checkpoint carries no tokenizer: say which one the loader would use. */
    const tensor *emb = st_find(f, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight");
    if (!emb) emb = st_find(f, "cond_stage_model.transformer.embeddings.token_embedding.weight");
    const char *env = getenv("OIR_TOKENIZER");
    if (emb && env && env[0]) printf("tokenizer: %s ($OIR_TOKENIZER)\n", env);
    else if (emb && emb->ndim == 2 && emb->shape[0] >= 49408)
        printf("tokenizer: %s (the checkpoint has none; --config DIR or $OIR_TOKENIZER "
               "choose another)\n", TOKENIZER_BUILTIN_NAME);
    else if (emb)
        printf("tokenizer: none (the checkpoint has none and its %lld-token text encoder does not "
               "fit the %s; give --config DIR or $OIR_TOKENIZER)\n",
               (long long)emb->shape[0], TOKENIZER_BUILTIN_NAME);
    st_close(f);
    return 0;
}


int cmd_info(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *path = argv[1];
    struct stat sb;
    if (stat(path, &sb) != 0) {
        oir_error err;
        oir_fail(&err, OIR_E_IO, "%s: no such file or folder", path);
        return cli_report("info", &err);
    }
    if (S_ISDIR(sb.st_mode)) {
        oir_error err = {0};
        if (info_model_folder(path, &err)) return cli_report("info", &err);
        return 0;
    }
    return info_safetensors(path);
}
