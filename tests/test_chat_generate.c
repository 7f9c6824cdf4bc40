// Chat completions through the public ABI on the tiny e2b fixture, with the model's output forced
// (gemma4_session_force_tokens) to sequences holding thinking, tool calls, several calls,
// malformed and truncated calls: the streamed events (text, reasoning, tool calls) token by
// token, the result JSON, finish reasons, usage with cache reuse across turns, stop strings,
// whole UTF-8 characters in every event, the 26B/31B empty thought channel, and
// generation_config.json defaults.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemma4.h"
#include "handle.h"
#include "harness.h"
#include "model.h"
#include "utf8.h"

static gemma4_model *M;

static int setup(void **state) {
    (void)state;
    gemma4_status st = gemma4_load(g4_src_path("tests/golden/e2b"), GEMMA4_DEVICE_CPU, 0, 512, 1, &M);
    if (st) fprintf(stderr, "%s\n", gemma4_last_error());
    return st;
}

static int teardown(void **state) {
    (void)state;
    gemma4_model_free(M);
    return 0;
}

struct events {
    char text[4096], reasoning[4096], calls[4096];
    int n_text, n_reasoning, n_calls, bad_utf8;
    int stop_after_calls; // return non-zero after this many tool-call events (0: never)
};

static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        i += len;
    }
    return 1;
}

static int32_t on_event(int32_t kind, const char *text, size_t len, void *ud) {
    struct events *e = ud;
    if (!valid_utf8((const unsigned char *)text, len)) e->bad_utf8++;
    char *dst = kind == GEMMA4_CHAT_EVENT_TEXT ? e->text
                : kind == GEMMA4_CHAT_EVENT_REASONING ? e->reasoning : e->calls;
    size_t have = strlen(dst);
    assert_true(have + len + 2 < sizeof e->text);
    memcpy(dst + have, text, len);
    dst[have + len] = '\0';
    if (kind == GEMMA4_CHAT_EVENT_TOOL_CALL) strcat(dst, "\n");
    if (kind == GEMMA4_CHAT_EVENT_TEXT) e->n_text++;
    if (kind == GEMMA4_CHAT_EVENT_REASONING) e->n_reasoning++;
    if (kind == GEMMA4_CHAT_EVENT_TOOL_CALL) e->n_calls++;
    return e->stop_after_calls && e->n_calls >= e->stop_after_calls;
}

// Forces the tokens of `text` (special-token text recognised) as the next reply. Bytes that
// are not UTF-8 (gemma4_tokenize refuses them) become their byte-fallback tokens "<0xHH>".
static size_t force(gemma4_session *s, const char *text) {
    int32_t ids[512];
    size_t n = 0, len = strlen(text);
    const struct g4_tokenizer *tok = ((struct g4_model *)((struct g4_handle *)M)->obj)->tok;
    for (size_t i = 0; i < len;) {
        size_t run = len - i, got = 0;
        const bool stray = !g4_utf8_valid(text + i, len - i, &run);
        if (run) {
            assert_int_equal(gemma4_tokenize(M, text + i, run, 0, ids + n, 512 - n, &got), GEMMA4_OK);
            n += got;
            i += run;
        }
        if (stray) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", (unsigned char)text[i++]);
            ids[n] = g4_tokenizer_find(tok, name);
            assert_true(ids[n++] >= 0);
        }
    }
    assert_int_equal(gemma4_session_force_tokens(s, ids, n), GEMMA4_OK);
    return n;
}

static int64_t info(gemma4_session *s, int32_t key) {
    int64_t v = -99;
    assert_int_equal(gemma4_session_info(s, key, &v), GEMMA4_OK);
    return v;
}

static char *result(gemma4_session *s) {
    static char buf[8192];
    size_t n = 0;
    assert_int_equal(gemma4_chat_result(s, buf, sizeof buf, &n), GEMMA4_OK);
    return buf;
}

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
    "\"required\":[\"city\"]}}}]";
static const char TURN1[] = "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]";

static size_t prompt_tokens(const char *msgs, const char *tools, int32_t flags) {
    size_t n = 0;
    assert_int_equal(gemma4_chat_tokenize_json(M, msgs, tools, flags | 1, NULL, 0, &n), GEMMA4_OK);
    return n;
}

// Thinking, text and a tool call in one reply, streamed token by token; then the tool result
// goes back and the answer reuses the cache.
static void test_thinking_and_tool_call(void **state) {
    (void)state;
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(M, 0, &s), GEMMA4_OK);
    size_t nf = force(s, "<|channel>thought\nThe user wants weather.<channel|>Let me check."
                         "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|>"
                         "<|tool_response>");
    struct events e = {0};
    assert_int_equal(gemma4_chat_complete(s, TURN1, TOOLS, GEMMA4_CHAT_THINKING, 100, on_event, &e),
                     GEMMA4_OK);
    assert_string_equal(e.reasoning, "The user wants weather.");
    assert_string_equal(e.text, "Let me check.");
    assert_string_equal(e.calls, "{\"id\":\"call_0\",\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}\n");
    assert_true(e.n_reasoning > 1 && e.n_text > 1); // streamed piece by piece, not at the end
    assert_int_equal(e.bad_utf8, 0);
    assert_int_equal(info(s, GEMMA4_SESSION_FINISH_REASON), GEMMA4_FINISH_TOOL_CALLS);
    const size_t n1 = prompt_tokens(TURN1, TOOLS, GEMMA4_CHAT_THINKING);
    assert_int_equal(info(s, GEMMA4_SESSION_USAGE_PROMPT_TOKENS), (int64_t)n1);
    assert_int_equal(info(s, GEMMA4_SESSION_USAGE_CACHED_TOKENS), 0);
    assert_int_equal(info(s, GEMMA4_SESSION_USAGE_COMPLETION_TOKENS), (int64_t)nf - 1);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"content\":\"Let me check.\",\"reasoning\":\"The user wants weather.\",\"tool_calls\":"
             "[{\"id\":\"call_0\",\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}],"
             "\"finish_reason\":\"tool_calls\",\"usage\":{\"prompt_tokens\":%zu,\"cached_tokens\":0,"
             "\"completion_tokens\":%zu,\"total_tokens\":%zu}}", n1, nf - 1, n1 + nf - 1);
    assert_string_equal(result(s), want);

    // Turn 2: the call and its result go back (as an OpenAI client sends them); the cache keeps
    // everything up to the end of the call.
    static const char TURN2[] =
        "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"content\":\"Let me check.\",\"reasoning_content\":\"The user wants weather.\","
        "\"tool_calls\":[{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_0\",\"content\":\"Sunny, 21 C\"}]";
    // With thinking on, the prompt after tool results ends in an open "<|channel>thought\n"
    // (the template's cue): the reply begins as reasoning.
    force(s, "Sunny, so say so.<channel|>It is sunny.<turn|>");
    memset(&e, 0, sizeof e);
    assert_int_equal(gemma4_chat_complete(s, TURN2, TOOLS, GEMMA4_CHAT_THINKING, 100, on_event, &e),
                     GEMMA4_OK);
    assert_string_equal(e.reasoning, "Sunny, so say so.");
    assert_string_equal(e.text, "It is sunny.");
    assert_int_equal(info(s, GEMMA4_SESSION_FINISH_REASON), GEMMA4_FINISH_STOP);
    const int64_t cached = info(s, GEMMA4_SESSION_USAGE_CACHED_TOKENS);
    assert_int_equal(info(s, GEMMA4_SESSION_USAGE_PROMPT_TOKENS),
                     (int64_t)prompt_tokens(TURN2, TOOLS, GEMMA4_CHAT_THINKING));
    printf("turn 2: %lld of %lld prompt tokens from the cache\n", (long long)cached,
           (long long)info(s, GEMMA4_SESSION_USAGE_PROMPT_TOKENS));
    // In the history the thought is kept (after the last user message), so the cache holds
    // the whole first reply up to <tool_call|>: more than the first prompt.
    assert_true(cached > (int64_t)n1);
    assert_non_null(strstr(result(s), "\"tool_calls\":[],\"finish_reason\":\"stop\""));
    // The rendered prompt does end in the open channel.
    char text[4096];
    size_t tn = 0;
    int32_t ids[1024];
    size_t n2 = 0;
    assert_int_equal(gemma4_chat_tokenize_json(M, TURN2, TOOLS, 1 | GEMMA4_CHAT_THINKING, ids, 1024, &n2),
                     GEMMA4_OK);
    assert_int_equal(gemma4_detokenize(M, ids, n2, 0, text, sizeof text, &tn), GEMMA4_OK);
    // (the template closes the turn after content, then still cues the thought: faithful)
    assert_non_null(strstr(text, "<tool_response|>Let me check.<turn|>\n<|channel>thought\n"));
    assert_int_equal(strcmp(text + tn - strlen("<|channel>thought\n"), "<|channel>thought\n"), 0);
    // Thinking off: no open channel, the reply is text.
    force(s, "Plain.<turn|>");
    memset(&e, 0, sizeof e);
    assert_int_equal(gemma4_chat_complete(s, TURN2, TOOLS, 0, 100, on_event, &e), GEMMA4_OK);
    assert_string_equal(e.text, "Plain.");
    assert_string_equal(e.reasoning, "");
    gemma4_session_free(s);
}

static void test_several_calls(void **state) {
    (void)state;
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(M, 0, &s), GEMMA4_OK);
    force(s, "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|>"
             "<|tool_call>call:get_weather{city:<|\"|>Rome, IT<|\"|>,days:3,metric:true,"
             "tags:[<|\"|>a<|\"|>,1.5],opt:{deep:null}}<tool_call|><|tool_response>");
    struct events e = {0};
    assert_int_equal(gemma4_chat_complete(s, TURN1, TOOLS, 0, 100, on_event, &e), GEMMA4_OK);
    assert_int_equal(e.n_calls, 2);
    assert_string_equal(e.calls,
                        "{\"id\":\"call_0\",\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}\n"
                        "{\"id\":\"call_1\",\"name\":\"get_weather\",\"arguments\":{\"city\":\"Rome, IT\","
                        "\"days\":3,\"metric\":true,\"tags\":[\"a\",1.5],\"opt\":{\"deep\":null}}}\n");
    assert_string_equal(e.text, "");
    assert_int_equal(info(s, GEMMA4_SESSION_FINISH_REASON), GEMMA4_FINISH_TOOL_CALLS);
    // The callback can stop after the first call.
    force(s, "<|tool_call>call:get_weather{city:<|\"|>A<|\"|>}<tool_call|>"
             "<|tool_call>call:get_weather{city:<|\"|>B<|\"|>}<tool_call|>");
    memset(&e, 0, sizeof e);
    e.stop_after_calls = 1;
    assert_int_equal(gemma4_chat_complete(s, TURN1, TOOLS, 0, 100, on_event, &e), GEMMA4_OK);
    assert_int_equal(e.n_calls, 1);
    assert_int_equal(info(s, GEMMA4_SESSION_FINISH_REASON), GEMMA4_FINISH_TOOL_CALLS);
    gemma4_session_free(s);
}

// Malformed, undeclared and truncated calls come back as text, finish reasons say what ended it.
static void test_malformed_calls(void **state) {
    (void)state;
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(M, 0, &s), GEMMA4_OK);
    struct events e = {0};
    // undeclared function
    force(s, "ok<|tool_call>call:rm_rf{path:<|\"|>/<|\"|>}<tool_call|><|tool_response>");
    assert_int_equal(gemma4_chat_complete(s, TURN1, TOOLS, 0, 100, on_event, &e), GEMMA4_OK);
    assert_int_equal(e.n_calls, 0);
    assert_string_equal(e.text, "ok<|tool_call>call:rm_rf{path:<|\"|>/<|\"|>}<tool_call|>");
    assert_int_equal(info(s, GEMMA4_SESSION_FINISH_REASON), GEMMA4_FINISH_STOP);
    assert_non_null(strstr(result(s), "\"tool_calls\":[]"));
    // bad syntax
    memset(&e, 0, sizeof e);
    force(s, "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>,,}<tool_call|><turn|>");
    assert_int_equal(gemma4_chat_complete(s, TURN1, TOOLS, 0, 100, on_event, &e), GEMMA4_OK);
    assert_int_equal(e.n_calls, 0);
    assert_string_equal(e.text, "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>,,}<tool_call|>");
    // truncated by max_tokens
    memset(&e, 0, sizeof e);
    size_t nf = force(s, "<|tool_call>call:get_weather{city:<|\"|>Par");
    assert_int_equal(gemma4_chat_complete(s, TURN1, TOOLS, 0, (int32_t)nf, on_event, &e), GEMMA4_OK);
    assert_int_equal(e.n_calls, 0);
    assert_string_equal(e.text, "<|tool_call>call:get_weather{city:<|\"|>Par");
    assert_int_equal(info(s, GEMMA4_SESSION_FINISH_REASON), GEMMA4_FINISH_LENGTH);
    assert_non_null(strstr(result(s), "\"finish_reason\":\"length\""));
    // without declared tools any name is a call
    memset(&e, 0, sizeof e);
    force(s, "<|tool_call>call:anything{}<tool_call|><|tool_response>");
    assert_int_equal(gemma4_chat_complete(s, TURN1, NULL, 0, 100, on_event, &e), GEMMA4_OK);
    assert_int_equal(e.n_calls, 1);
    gemma4_session_free(s);
}

// Stop strings apply to the answer text; thinking is not cut by them.
static void test_stop_string_and_utf8(void **state) {
    (void)state;
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(M, 0, &s), GEMMA4_OK);
    assert_int_equal(gemma4_session_add_stop(s, "END"), GEMMA4_OK);
    force(s, "<|channel>thought\nno END here? it is reasoning<channel|>Grüße 🌍 café END ignored<turn|>");
    struct events e = {0};
    assert_int_equal(gemma4_chat_complete(s, TURN1, NULL, 0, 100, on_event, &e), GEMMA4_OK);
    assert_string_equal(e.reasoning, "no END here? it is reasoning");
    assert_string_equal(e.text, "Grüße 🌍 café ");
    assert_int_equal(e.bad_utf8, 0);
    assert_int_equal(info(s, GEMMA4_SESSION_FINISH_REASON), GEMMA4_FINISH_STOP);
    // Bytes that form no character (byte-fallback tokens can say anything) arrive as U+FFFD,
    // in text, reasoning and tool-call arguments alike.
    force(s, "<|channel>thought\n\xe2\x82<channel|>a\xd0" "b\xff<|tool_call>call:f{x:<|\"|>\xc3(<|\"|>}"
             "<tool_call|><|tool_response>");
    memset(&e, 0, sizeof e);
    assert_int_equal(gemma4_chat_complete(s, TURN1, NULL, 0, 100, on_event, &e), GEMMA4_OK);
    assert_string_equal(e.reasoning, "\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(e.text, "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    assert_string_equal(e.calls, "{\"id\":\"call_0\",\"name\":\"f\",\"arguments\":{\"x\":\"\xef\xbf\xbd(\"}}\n");
    assert_int_equal(e.bad_utf8, 0);
    gemma4_session_free(s);
}

// The 26B-A4B / 31B template: the generation prompt carries the empty thought channel with
// thinking off, not with thinking on.
static void test_large_template_prompt(void **state) {
    (void)state;
    struct g4_model *core = (struct g4_model *)((struct g4_handle *)M)->obj;
    const int saved = core->cfg.chat_gen_prompt;
    core->cfg.chat_gen_prompt = 3; // G4_CHAT_GEN_PROMPT_EMPTY_THOUGHT
    int32_t ids[256];
    size_t n = 0;
    assert_int_equal(gemma4_chat_tokenize_json(M, TURN1, NULL, 1, ids, 256, &n), GEMMA4_OK);
    char text[1024];
    size_t tn = 0;
    assert_int_equal(gemma4_detokenize(M, ids, n, 0, text, sizeof text, &tn), GEMMA4_OK);
    assert_string_equal(text, "<bos><|turn>user\nWeather in Paris?<turn|>\n<|turn>model\n"
                              "<|channel>thought\n<channel|>");
    assert_int_equal(gemma4_chat_tokenize_json(M, TURN1, NULL, 1 | GEMMA4_CHAT_THINKING, ids, 256, &n),
                     GEMMA4_OK);
    assert_int_equal(gemma4_detokenize(M, ids, n, 0, text, sizeof text, &tn), GEMMA4_OK);
    assert_string_equal(text, "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>user\nWeather in Paris?"
                              "<turn|>\n<|turn>model\n");
    // A completion after the empty channel: the answer is text, no reasoning.
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(M, 0, &s), GEMMA4_OK);
    force(s, "Sunny.<turn|>");
    struct events e = {0};
    assert_int_equal(gemma4_chat_complete(s, TURN1, NULL, 0, 100, on_event, &e), GEMMA4_OK);
    assert_string_equal(e.text, "Sunny.");
    assert_string_equal(e.reasoning, "");
    assert_non_null(strstr(result(s), "\"reasoning\":null"));
    gemma4_session_free(s);
    core->cfg.chat_gen_prompt = saved;
}

static void test_errors(void **state) {
    (void)state;
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(M, 0, &s), GEMMA4_OK);
    char buf[16];
    size_t n = 5;
    assert_int_equal(gemma4_chat_result(s, buf, sizeof buf, &n), GEMMA4_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(gemma4_last_error(), "no chat completion"));
    assert_int_equal(info(s, GEMMA4_SESSION_FINISH_REASON), -1);
    assert_int_equal(gemma4_chat_complete(s, "[{\"role\":\"user\"", NULL, 0, 4, NULL, NULL),
                     GEMMA4_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(gemma4_last_error(), "messages: invalid JSON"));
    assert_int_equal(gemma4_chat_complete(s, TURN1, "[1]", 0, 4, NULL, NULL), GEMMA4_ERR_INVALID_ARGUMENT);
    assert_int_equal(gemma4_chat_complete(s, TURN1, NULL, 64, 4, NULL, NULL), GEMMA4_ERR_INVALID_ARGUMENT);
    assert_int_equal(gemma4_chat_complete(s, TURN1, NULL, 0, -1, NULL, NULL), GEMMA4_ERR_INVALID_ARGUMENT);
    const int32_t bad = 1 << 20;
    assert_int_equal(gemma4_session_force_tokens(s, &bad, 1), GEMMA4_ERR_INVALID_TOKEN);
    assert_int_equal(gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &(int64_t){0}), GEMMA4_OK);
    assert_int_equal(info(s, GEMMA4_SESSION_N_PAST), 0); // nothing ran
    // render_json equals the fixtures' text path (one case) and checks flags
    n = 0;
    assert_int_equal(gemma4_chat_render_json(NULL, TURN1, NULL, 1, NULL, 0, &n), GEMMA4_OK);
    assert_int_equal(n, strlen("<bos><|turn>user\nWeather in Paris?<turn|>\n<|turn>model\n"));
    assert_int_equal(gemma4_chat_render_json(NULL, TURN1, NULL, 2, NULL, 0, &n), GEMMA4_ERR_INVALID_ARGUMENT);
    // a context too small for the conversation: CONTEXT_FULL, nothing run
    gemma4_session *tiny;
    assert_int_equal(gemma4_session_new(M, 8, &tiny), GEMMA4_OK);
    assert_int_equal(gemma4_chat_complete(tiny, TURN1, TOOLS, 0, 4, NULL, NULL), GEMMA4_ERR_CONTEXT_FULL);
    assert_int_equal(info(tiny, GEMMA4_SESSION_N_PAST), 0);
    gemma4_session_free(tiny);
    gemma4_session_free(s);
}

// generation_config.json: sessions start with its sampling settings; explicit settings and
// gemma4_session_reset_sampling move away from and back to them.
static void gen_tokens(gemma4_session *s, int32_t *out, int n) {
    static const int32_t prompt[] = {2, 5, 40, 41, 42};
    assert_int_equal(gemma4_kv_reset(s), GEMMA4_OK);
    assert_int_equal(gemma4_session_set_seed(s, 7), GEMMA4_OK);
    assert_int_equal(gemma4_session_step(s, prompt, 5, NULL, 0, NULL), GEMMA4_OK);
    for (int i = 0; i < n; i++) {
        assert_int_equal(gemma4_session_sample(s, &out[i]), GEMMA4_OK);
        assert_int_equal(gemma4_session_step(s, &out[i], 1, NULL, 0, NULL), GEMMA4_OK);
    }
}

static void test_generation_config(void **state) {
    (void)state;
    const char *dir = g4_tmpdir("genconf");
    char path[1024], target[1024];
    static const char *files[] = {"config.json", "model.safetensors", "tokenizer.json"};
    for (size_t i = 0; i < G4_COUNT(files); i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        snprintf(target, sizeof target, "%s/%s", g4_src_path("tests/golden/e2b"), files[i]);
        assert_int_equal(symlink(target, path), 0);
    }
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    static const char conf[] = "{\"do_sample\": true, \"temperature\": 1.5, \"top_k\": 40, \"top_p\": 0.9}";
    assert_int_equal(g4_write_file(path, conf, strlen(conf)), 0);
    gemma4_model *m;
    assert_int_equal(gemma4_load(dir, GEMMA4_DEVICE_CPU, 0, 64, 1, &m), GEMMA4_OK);
    gemma4_session *a, *b;
    assert_int_equal(gemma4_session_new(m, 0, &a), GEMMA4_OK);
    assert_int_equal(gemma4_session_new(m, 0, &b), GEMMA4_OK);
    int32_t ta[16], tb[16], greedy[16];
    gen_tokens(a, ta, 16);                                             // the file's defaults
    assert_int_equal(gemma4_session_set_sampling(b, 1.5f, 40, 0.9f, 0.0f), GEMMA4_OK);
    gen_tokens(b, tb, 16);                                             // the same, explicitly
    assert_memory_equal(ta, tb, sizeof ta);
    assert_int_equal(gemma4_session_set_greedy(b), GEMMA4_OK);
    gen_tokens(b, greedy, 16);                                         // explicit overrides
    assert_memory_not_equal(ta, greedy, sizeof ta);
    assert_int_equal(gemma4_session_reset_sampling(b), GEMMA4_OK);
    gen_tokens(b, tb, 16);                                             // back to the file's
    assert_memory_equal(ta, tb, sizeof ta);
    gemma4_session_free(a);
    gemma4_session_free(b);
    gemma4_model_free(m);
    // A bad value is a load error naming the file.
    static const char bad[] = "{\"do_sample\": true, \"top_p\": 1.5}";
    assert_int_equal(g4_write_file(path, bad, strlen(bad)), 0);
    assert_int_equal(gemma4_load(dir, GEMMA4_DEVICE_CPU, 0, 64, 1, &m), GEMMA4_ERR_FORMAT);
    assert_non_null(strstr(gemma4_last_error(), "generation_config.json: top_p"));
    g4_rm_rf(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thinking_and_tool_call),
        cmocka_unit_test(test_several_calls),
        cmocka_unit_test(test_malformed_calls),
        cmocka_unit_test(test_stop_string_and_utf8),
        cmocka_unit_test(test_large_template_prompt),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_generation_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
