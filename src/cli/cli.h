/* The `oir` command: one function per subcommand, each in its own file.
 * The CLI is the only place that prints and maps errors to exit codes. */
#ifndef OIR_CLI_H
#define OIR_CLI_H

#include "oir.h"

/* Exit codes: 0 ok, 1 runtime failure, 2 usage error. */
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Prints "oir <cmd>: <message>" to stderr and returns CLI_EXIT_FAIL
 * (CLI_EXIT_USAGE for OIR_E_ARG). */
int cli_report(const char *cmd, const oir_error *err);
/* 1 if argv contains -h or --help. */
int cli_wants_help(int argc, char **argv);

int cmd_info(int argc, char **argv);
/* Prints the components of a model folder (info_model.c). */
int info_model_folder(const char *path, oir_error *err);
int cmd_generate(int argc, char **argv);
int cmd_reconstruct(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_edit(int argc, char **argv);
int cmd_mask(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
