// gemma4-chat: a command-line chat on the public C API alone (abi/gemma4.h).
//
//   gemma4-chat --model DIR [--prompt TEXT] [--interactive] [--system TEXT] [-n MAX_TOKENS]
//               [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S]
//               [--ctx N] [--threads N] [--device cpu|cuda] [--precision fp32|bf16]
//
// Streams the reply as it is generated, then prints prompt and generation speed. In interactive
// mode every turn passes the whole conversation to gemma4_chat_generate, which reuses the
// session's cache for the turns it has already seen.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemma4.h"

#define MAX_MESSAGES 256

struct reply {
    char *text;
    size_t len, cap;
};

static int32_t on_token(const char *piece, size_t len, int32_t token, void *user_data) {
    (void)token;
    struct reply *r = user_data;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    if (r->len + len + 1 > r->cap) {
        size_t cap = (r->len + len + 1) * 2;
        char *p = realloc(r->text, cap);
        if (!p) return 1; // stop generating rather than lose text silently
        r->text = p;
        r->cap = cap;
    }
    memcpy(r->text + r->len, piece, len);
    r->len += len;
    r->text[r->len] = '\0';
    return 0;
}

static int fail(const char *what, gemma4_status st) {
    fprintf(stderr, "gemma4-chat: %s: %s (%s)\n", what, gemma4_last_error(), gemma4_status_name(st));
    return 1;
}

static void usage(void) {
    fprintf(stderr, "usage: gemma4-chat --model DIR [--prompt TEXT] [--interactive] [--system TEXT]\n"
                    "       [-n MAX_TOKENS] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
                    "       [--repeat-penalty R] [--seed S] [--ctx N] [--threads N] [--device cpu|cuda]\n"
                    "       [--precision fp32|bf16]   (bf16: faster prompts, see gemma4_session_set_precision)\n");
}

int main(int argc, char **argv) {
    const char *model_dir = NULL, *prompt = NULL, *system = NULL;
    int interactive = 0, max_tokens = 128, top_k = 0, threads = 0, device = GEMMA4_DEVICE_CPU;
    int precision = GEMMA4_PRECISION_FP32;
    float temp = 0.0f, top_p = 1.0f, min_p = 0.0f, penalty = 1.0f;
    long long ctx = 0;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (strcmp(a, name) == 0 && v && ++i)
        if (OPT("--model")) model_dir = v;
        else if (OPT("--prompt")) prompt = v;
        else if (OPT("--system")) system = v;
        else if (OPT("-n")) max_tokens = atoi(v);
        else if (OPT("--temp")) temp = strtof(v, NULL);
        else if (OPT("--top-k")) top_k = atoi(v);
        else if (OPT("--top-p")) top_p = strtof(v, NULL);
        else if (OPT("--min-p")) min_p = strtof(v, NULL);
        else if (OPT("--repeat-penalty")) penalty = strtof(v, NULL);
        else if (OPT("--seed")) seed = strtoull(v, NULL, 10);
        else if (OPT("--ctx")) ctx = atoll(v);
        else if (OPT("--threads")) threads = atoi(v);
        else if (OPT("--device")) device = strcmp(v, "cuda") == 0 ? GEMMA4_DEVICE_CUDA : GEMMA4_DEVICE_CPU;
        else if (OPT("--precision") && (!strcmp(v, "fp32") || !strcmp(v, "bf16")))
            precision = strcmp(v, "bf16") == 0 ? GEMMA4_PRECISION_BF16 : GEMMA4_PRECISION_FP32;
        else if (strcmp(a, "--interactive") == 0 || strcmp(a, "-i") == 0) interactive = 1;
        else {
            usage();
            return 2;
        }
#undef OPT
    }
    if (!model_dir || (!prompt && !interactive)) {
        usage();
        return 2;
    }

    gemma4_model *model;
    gemma4_session *chat;
    gemma4_status st = gemma4_load(model_dir, device, 0, ctx, threads, &model);
    if (st) return fail("load", st);
    if ((st = gemma4_session_new(model, 0, &chat))) return fail("session", st);
    gemma4_model_free(model); // the session keeps it alive
    if (temp > 0 && (st = gemma4_session_set_sampling(chat, temp, top_k, top_p, min_p)))
        return fail("sampling", st);
    if ((st = gemma4_session_set_repetition_penalty(chat, penalty, 64))) return fail("penalty", st);
    gemma4_session_set_seed(chat, seed);
    if ((st = gemma4_session_set_precision(chat, precision))) return fail("precision", st);

    const char *roles[MAX_MESSAGES];
    char *contents[MAX_MESSAGES];
    size_t n = 0;
    if (system) {
        roles[n] = "system";
        contents[n++] = strdup(system);
    }
    char line[8192];
    int rc = 0;
    for (;;) {
        const char *user = prompt;
        if (!user) {
            printf("> ");
            fflush(stdout);
            if (!fgets(line, sizeof line, stdin)) break;
            line[strcspn(line, "\n")] = '\0';
            if (!line[0]) continue;
            user = line;
        }
        if (n + 2 > MAX_MESSAGES) break;
        roles[n] = "user";
        contents[n++] = strdup(user);
        struct reply r = {0};
        st = gemma4_chat_generate(chat, roles, (const char *const *)contents, n, max_tokens,
                                  on_token, &r);
        printf("\n");
        if (st) {
            free(r.text);
            rc = fail("generate", st);
            break;
        }
        roles[n] = "model";
        contents[n++] = r.text ? r.text : strdup("");
        int64_t pt, pus, gt, gus;
        gemma4_session_info(chat, GEMMA4_SESSION_LAST_PROMPT_TOKENS, &pt);
        gemma4_session_info(chat, GEMMA4_SESSION_LAST_PROMPT_US, &pus);
        gemma4_session_info(chat, GEMMA4_SESSION_LAST_GEN_TOKENS, &gt);
        gemma4_session_info(chat, GEMMA4_SESSION_LAST_GEN_US, &gus);
        fprintf(stderr, "[prompt: %lld tokens, %.1f tok/s | generation: %lld tokens, %.1f tok/s]\n",
                (long long)pt, pus > 0 ? pt * 1e6 / pus : 0.0, (long long)gt,
                gus > 0 ? gt * 1e6 / gus : 0.0);
        if (prompt) {
            if (!interactive) break;
            prompt = NULL;
        }
    }
    for (size_t i = 0; i < n; i++) free(contents[i]);
    gemma4_session_free(chat);
    return rc;
}
