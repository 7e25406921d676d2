/* Option parsing and path checks shared by the subcommands.
 *
 *     const char *prompt = NULL;  int steps = 50;  float g = 7.5f;  int quiet = 0;
 *     const cli_opt opts[] = {
 *         {"--prompt", CLI_STR, &prompt},
 *         {"--steps", CLI_INT, &steps, 1, 1000},
 *         {"--guidance", CLI_FLOAT, &g, 0, 100},
 *         {"--quiet", CLI_FLAG, &quiet},
 *     };
 *     if (cli_parse(argc, argv, opts, 4, NULL, 0, NULL, &err)) return cli_report("x", &err);
 *
 * Options are "--name value" or "--name=value"; a flag takes no value. Every
 * problem is OIR_E_ARG with a message naming the option: "--steps: 'abc' is
 * not an integer", "--steps: 0 is outside 1..1000", "unknown option --foo",
 * "--prompt needs a value". Later occurrences of an option win, except for
 * CLI_STRS, which collects every occurrence. */
#ifndef OIR_CLI_ARGS_H
#define OIR_CLI_ARGS_H

#include <stdint.h>

#include "core/error.h"
#include "io/outputs.h"

typedef enum {
    CLI_FLAG,  /* int* set to 1 */
    CLI_STR,   /* const char ** */
    CLI_INT,   /* int*, checked against [min, max] */
    CLI_FLOAT, /* float*, finite, checked against [min, max] */
    CLI_U64,   /* uint64_t* (decimal or 0x hex, no sign) */
    CLI_STRS   /* cli_strs*: every occurrence, in order */
} cli_opt_kind;

#define CLI_STRS_MAX 64
typedef struct {
    int n;
    const char *v[CLI_STRS_MAX];
} cli_strs;

typedef struct {
    const char *name; /* "--steps" */
    cli_opt_kind kind;
    void *dst;
    double min, max; /* CLI_INT / CLI_FLOAT range, inclusive */
} cli_opt;

/* Parses argv[1..argc-1] (argv[0] is the subcommand's name). Arguments not
 * starting with "--" are positional: stored into pos (at most max_pos, more
 * is an error), their count in *npos. "-h"/"--help" are ignored here
 * (callers check cli_wants_help first). pos may be NULL when max_pos is 0. */
int cli_parse(int argc, char **argv, const cli_opt *opts, int nopts, const char **pos, int max_pos,
              int *npos, oir_error *err);

/* Number parsing with the option named in messages; the whole string must
 * be the number. */
int cli_parse_int(const char *opt, const char *s, int min, int max, int *out, oir_error *err);
int cli_parse_float(const char *opt, const char *s, double min, double max, float *out,
                    oir_error *err);
int cli_parse_u64(const char *opt, const char *s, uint64_t *out, oir_error *err);

/* Before anything is written (io/outputs.h): OIR_E_ARG when the file
 * `out` (--out) is one of the inputs ("--out a.png is the input given to
 * --image; ..."), or exists and is not a file oir wrote (a user's photo, a
 * folder, a symlink). NULL input paths are skipped. */
int cli_check_out_file(const char *out, const output_input *in, int n, oir_error *err);

/* The same for an output folder (--out) that a run replaces whole: refused
 * when it is or holds an input, or holds files oir did not write; then
 * output_dir_begin (the fresh temp folder the run writes into). */
int cli_begin_out_dir(output_dir *d, const char *out, const output_input *in, int n, oir_error *err);

/* OIR_E_ARG "--out x.jpg: oir writes PNG; use a .png name" unless path ends
 * in ".png" (any case). */
int cli_check_png_name(const char *path, oir_error *err);

/* OIR_E_IO "--image x.png: no such file" when path is not a readable
 * regular file (a folder, a FIFO or a device is refused before any open). */
int cli_check_input_file(const char *flag, const char *path, oir_error *err);

/* Applies --threads (n > 0) or OIR_THREADS / all cores (n == 0). */
void cli_set_threads(int n);


#endif
