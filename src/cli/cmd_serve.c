/* oir serve: the local web editor (src/serve/, README "The web editor"). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "core/error.h"
#include "models/tokenizer.h"
#include "serve/serve.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: oir serve [--model PATH] [--clip PATH] [--port 8080] [--host 127.0.0.1] [options]\n\n"
            "A local web editor: open http://127.0.0.1:8080/ in a browser, open or drop a photo, type the\n"
            "source prompt, add pairs (from -> to) with a painted mask, a box or an automatic one, run, watch\n"
            "the search, click any candidate to take it instead, download edited.png, the sheets and\n"
            "report.json. The models are loaded once; jobs run one at a time, in order. Scripts can drive it\n"
            "through its JSON API (README \"The web editor\"). Ctrl-C (SIGINT) or SIGTERM stops it.\n\n"
            "  --host ADDR            address to listen on (default 127.0.0.1); anything but a loopback\n"
            "                         address (0.0.0.0: all) exposes it to the network, with a warning:\n"
            "                         there is no authentication\n"
            "  --port N               port (default 8080); 0 picks a free one (printed on stdout)\n"
            "  --allow-host NAME      also answer requests whose Host is NAME (repeatable); by default the\n"
            "                         server answers only at its own address (and localhost on loopback),\n"
            "                         refusing other Host names (DNS rebinding) and other pages' Origins\n"
            "  --max-upload-mb MB     largest submission (photo + masks), default 32; larger: 413\n"
            "  --max-pixels N         largest photo in pixels (width x height), default 16777216\n"
            "                         (4096 x 4096); larger: 400\n"
            "  --max-jobs N           jobs kept, default 16: past it the oldest finished ones are dropped\n"
            "                         (a job keeps its candidates in memory for re-picks)\n"
            "  --max-active N         jobs queued or running at once, default 8; more: 503\n"
            "  --job-ttl SECONDS      a finished job (its results) is kept this long, default 3600\n"
            "  --quiet                no log lines on stderr\n"
            "models:\n"
            "  --model PATH           SD 1.x diffusers folder or single .safetensors (default: the shipped tiny-shapes)\n"
            "  --clip PATH            Hugging Face CLIP folder for the search metric (default: the shipped tiny-clip)\n"
            "  --variant fp16         prefer *.fp16.safetensors weights\n"
            "  --tokenizer-mode M     clip (default), openai or hf-no-ftfy (as oir edit)\n"
            "  --threads N            CPU threads (default: all cores, or $OIR_THREADS)\n");
}

int cmd_serve(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    serve_options o;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.port = 8080;
    o.max_jobs = 16;
    o.max_active = 8;
    o.job_ttl = 3600;
    int upload_mb = 32, threads = 0;
    const char *model = NULL, *clip = NULL, *variant = NULL, *tok_mode = NULL, *max_pixels = NULL;
    cli_strs allow = {0};
    const cli_opt opts[] = {
        {"--host", CLI_STR, &o.host, 0, 0},
        {"--port", CLI_INT, &o.port, 0, 65535},
        {"--allow-host", CLI_STRS, &allow, 0, 0},
        {"--max-upload-mb", CLI_INT, &upload_mb, 1, 4096},
        {"--max-pixels", CLI_STR, &max_pixels, 0, 0},
        {"--max-jobs", CLI_INT, &o.max_jobs, 1, 100000},
        {"--max-active", CLI_INT, &o.max_active, 1, 10000},
        {"--job-ttl", CLI_INT, &o.job_ttl, 1, 30 * 24 * 3600},
        {"--quiet", CLI_FLAG, &o.quiet, 0, 0},
        {"--model", CLI_STR, &model, 0, 0},
        {"--clip", CLI_STR, &clip, 0, 0},
        {"--variant", CLI_STR, &variant, 0, 0},
        {"--tokenizer-mode", CLI_STR, &tok_mode, 0, 0},
        {"--threads", CLI_INT, &threads, 0, 1024},
    };
    oir_error err = {0};
    if (cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL, &err))
        return cli_report("serve", &err);
    o.max_upload_bytes = (long long)upload_mb << 20;
    o.max_pixels = 4096LL * 4096;
    if (max_pixels) {
        uint64_t v;
        if (cli_parse_u64("--max-pixels", max_pixels, &v, &err)) return cli_report("serve", &err);
        if (v < 1 || v > (64ULL << 20)) {
            oir_fail(&err, OIR_E_ARG, "--max-pixels %s: expected 1..%llu (the image reader's own limit)", max_pixels,
                     64ULL << 20);
            return cli_report("serve", &err);
        }
        o.max_pixels = (long long)v;
    }
    if (allow.n > SERVE_MAX_ALLOW_HOSTS) {
        oir_fail(&err, OIR_E_ARG, "%d --allow-host names (at most %d)", allow.n, SERVE_MAX_ALLOW_HOSTS);
        return cli_report("serve", &err);
    }
    for (int i = 0; i < allow.n; i++) o.allow_hosts[i] = allow.v[i];
    o.n_allow_hosts = allow.n;
    unsigned char addr[16];
    if (strcmp(o.host, "localhost") && inet_pton(AF_INET, o.host, addr) != 1 && inet_pton(AF_INET6, o.host, addr) != 1) {
        oir_fail(&err, OIR_E_ARG, "--host %s: expected an IP address (127.0.0.1, ::1, 0.0.0.0, ...) or localhost", o.host);
        return cli_report("serve", &err);
    }
    if (!serve_available()) {
        oir_error none = {0};
        serve_run(NULL, &o, &none);
        return cli_report("serve", &none);
    }
    cli_set_threads(threads);
    oir_context_params cp = oir_context_default_params();
    if (model) cp.model_path = model;
    else if (getenv("OIR_MODEL") && *getenv("OIR_MODEL")) cp.model_path = getenv("OIR_MODEL");
    if (clip) cp.clip_path = clip;
    else if (getenv("OIR_CLIP") && *getenv("OIR_CLIP")) cp.clip_path = getenv("OIR_CLIP");
    else if (strcmp(cp.model_path, oir_context_default_params().model_path) != 0) {
        oir_fail(&err, OIR_E_ARG,
                 "--model %s is given without --clip: the search metric would score with the shipped toy CLIP "
                 "(%s), which knows only the shapes world; give --clip PATH or set OIR_CLIP",
                 cp.model_path, cp.clip_path);
        return cli_report("serve", &err);
    }
    cp.variant = variant;
    tokenizer_mode tm = TOKENIZER_CLIP;
    if (tok_mode && tokenizer_mode_parse(tok_mode, &tm, &err)) {
        oir_error_prefix(&err, "--tokenizer-mode");
        return cli_report("serve", &err);
    }
    cp.tokenizer_mode = (int)tm;
    oir_context *ctx = NULL;
    if (oir_context_load(&ctx, &cp, &err)) return cli_report("serve", &err);
    int rc = serve_run(ctx, &o, &err);
    oir_context_free(ctx);
    return rc ? cli_report("serve", &err) : 0;
}
