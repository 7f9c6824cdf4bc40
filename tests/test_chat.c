// Chat rendering: every case in tests/chat/expected.txt (transformers' apply_chat_template over
// the official Gemma 4 template, see tests/chat/make_chat_fixtures.py) byte-for-byte, the
// caller-buffer convention with guard bytes, and each invalid argument with its message.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "harness.h"

#define MAX_MSGS 16

struct chat_case {
    int add_gen;
    size_t n;
    const char *roles[MAX_MSGS];
    char *contents[MAX_MSGS];
    char *expected;
    size_t expected_len;
};

// Decodes hex ("-" = empty) into a malloc'd NUL-terminated string.
static char *unhex(const char *h, size_t *len) {
    size_t n = strcmp(h, "-") == 0 ? 0 : strlen(h) / 2;
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        s[i] = (char)v;
    }
    s[n] = '\0';
    if (len) *len = n;
    return s;
}

// Parses one fixture line (modified in place by strtok); role strings point into the line.
static void parse_case(char *line, struct chat_case *c) {
    char *save = NULL;
    char *tok = strtok_r(line, " ", &save);
    assert_non_null(tok);
    c->add_gen = atoi(tok);
    tok = strtok_r(NULL, " ", &save);
    assert_non_null(tok);
    c->n = (size_t)atoi(tok);
    assert_true(c->n <= MAX_MSGS);
    for (size_t i = 0; i < c->n; i++) {
        c->roles[i] = strtok_r(NULL, " ", &save);
        tok = strtok_r(NULL, " ", &save);
        assert_non_null(c->roles[i]);
        assert_non_null(tok);
        c->contents[i] = unhex(tok, NULL);
    }
    tok = strtok_r(NULL, " \n", &save);
    assert_non_null(tok);
    c->expected = unhex(tok, &c->expected_len);
}

static void free_case(struct chat_case *c) {
    for (size_t i = 0; i < c->n; i++) free(c->contents[i]);
    free(c->expected);
}

static void print_escaped(const char *what, const char *s, size_t n) {
    fprintf(stderr, "  %s (%zu bytes): \"", what, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') fputs("\\n", stderr);
        else if (ch < 0x20 || ch == 0x7f) fprintf(stderr, "\\x%02x", ch);
        else fputc(ch, stderr);
    }
    fputs("\"\n", stderr);
}

// Renders into a buffer of exactly the needed size between guard bytes and compares.
static int check_case(const struct chat_case *c, int line_no) {
    const char *const *contents = (const char *const *)c->contents;
    size_t need = 0;
    assert_int_equal(g4_chat_render(c->roles, contents, c->n, c->add_gen, NULL, 0, &need), G4_OK);
    char *mem = malloc(need + 2 * 16 + 1);
    assert_non_null(mem);
    memset(mem, 0xA5, need + 2 * 16 + 1);
    char *buf = mem + 16;
    size_t got = 0;
    assert_int_equal(g4_chat_render(c->roles, contents, c->n, c->add_gen, buf, need, &got),
                     G4_OK);
    int ok = got == need && got == c->expected_len && memcmp(buf, c->expected, got) == 0;
    for (size_t i = 0; i < 16; i++) ok &= (unsigned char)mem[i] == 0xA5;
    for (size_t i = 0; i < 17; i++) ok &= (unsigned char)buf[need + i] == 0xA5; // no NUL: cap==n
    if (!ok) {
        fprintf(stderr, "chat case at expected.txt line %d differs (or guard bytes changed)\n",
                line_no);
        print_escaped("expected", c->expected, c->expected_len);
        print_escaped("got     ", buf, got);
    }
    free(mem);
    return ok;
}

static void test_fixtures(void **state) {
    (void)state;
    size_t n = 0;
    char *text = g4_read_file(g4_src_path("tests/chat/expected.txt"), &n);
    assert_non_null(text); // a missing fixture is a failure, not a skip
    int n_cases = 0, n_failed = 0, line_no = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        if (line[0] == '#' || line[0] == '\0') continue;
        struct chat_case c = {0};
        parse_case(line, &c);
        n_failed += !check_case(&c, line_no);
        n_cases++;
        free_case(&c);
    }
    free(text);
    fprintf(stderr, "chat fixtures: %d cases, %d failed\n", n_cases, n_failed);
    assert_true(n_cases >= 40);
    assert_int_equal(n_failed, 0);
}

static const char *const ROLES2[] = {"system", "user"};
static const char *const CONTENTS2[] = {"Be brief.", "Hi"};
static const char EXPECTED2[] =
    "<bos><|turn>system\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n";

static void test_buffer_convention(void **state) {
    (void)state;
    const size_t len = sizeof EXPECTED2 - 1;
    size_t n = 12345;
    // NULL buffer: OK and the size (cap ignored).
    assert_int_equal(g4_chat_render(ROLES2, CONTENTS2, 2, 1, NULL, 999, &n), G4_OK);
    assert_int_equal(n, len);
    // One byte short: BUFFER_TOO_SMALL with the needed size, buffer untouched.
    char buf[128];
    memset(buf, 'Z', sizeof buf);
    g4_clear_error();
    n = 0;
    assert_int_equal(g4_chat_render(ROLES2, CONTENTS2, 2, 1, buf, len - 1, &n),
                     G4_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, len);
    char want[64];
    snprintf(want, sizeof want, "holds %zu bytes, need %zu", len - 1, len);
    assert_non_null(strstr(g4_last_error(), want));
    for (size_t i = 0; i < sizeof buf; i++) assert_int_equal(buf[i], 'Z');
    // Zero capacity with a buffer is also too small.
    assert_int_equal(g4_chat_render(ROLES2, CONTENTS2, 2, 1, buf, 0, &n),
                     G4_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, len);
    // Exact size: no NUL written; one more: NUL terminated.
    assert_int_equal(g4_chat_render(ROLES2, CONTENTS2, 2, 1, buf, len, &n), G4_OK);
    assert_int_equal(n, len);
    assert_memory_equal(buf, EXPECTED2, len);
    assert_int_equal(buf[len], 'Z');
    assert_int_equal(g4_chat_render(ROLES2, CONTENTS2, 2, 1, buf, sizeof buf, &n), G4_OK);
    assert_string_equal(buf, EXPECTED2);
    assert_int_equal(buf[len + 1], 'Z');
}

static void expect_invalid(const char *const *roles, const char *const *contents, size_t n,
                           size_t *n_out, const char *substr) {
    g4_clear_error();
    char buf[256];
    assert_int_equal(g4_chat_render(roles, contents, n, 1, buf, sizeof buf, n_out),
                     G4_ERR_INVALID_ARGUMENT);
    if (n_out) assert_int_equal(*n_out, 0);
    if (!strstr(g4_last_error(), substr))
        fail_msg("message \"%s\" lacks \"%s\"", g4_last_error(), substr);
}

// 26B-A4B / 31B: the same text plus the empty thought channel after the generation prompt.
static void test_empty_thought_prompt(void **state) {
    (void)state;
    const char *roles[] = {"system", "user"}, *contents[] = {"Be brief.", "Hi"};
    char a[256], b[256];
    size_t na, nb;
    assert_int_equal(g4_chat_render(roles, contents, 2, G4_CHAT_GEN_PROMPT, a, sizeof a, &na), G4_OK);
    assert_int_equal(g4_chat_render(roles, contents, 2, G4_CHAT_GEN_PROMPT_EMPTY_THOUGHT, b,
                                    sizeof b, &nb), G4_OK);
    assert_string_equal(a, "<bos><|turn>system\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n");
    assert_int_equal(nb, na + strlen("<|channel>thought\n<channel|>"));
    assert_memory_equal(a, b, na);
    assert_string_equal(b + na, "<|channel>thought\n<channel|>");
}

static void test_errors(void **state) {
    (void)state;
    size_t n = 77;
    static const char *const bad_role[] = {"user", "tool"};
    static const char *const upper_role[] = {"User"};
    static const char *const null_role[] = {"user", NULL};
    static const char *const null_content[] = {"hi", NULL};
    static const char *const ok2[] = {"hi", "there"};
    expect_invalid(bad_role, ok2, 2, &n, "message 1 has unknown role \"tool\"");
    expect_invalid(upper_role, ok2, 1, &n, "unknown role \"User\"");
    expect_invalid(null_role, ok2, 2, &n, "message 1 has a NULL role");
    expect_invalid(ROLES2, null_content, 2, &n, "message 1 has NULL content");
    expect_invalid(ROLES2, CONTENTS2, 0, &n, "empty conversation");
    expect_invalid(NULL, CONTENTS2, 2, &n, "roles is NULL");
    expect_invalid(ROLES2, NULL, 2, &n, "contents is NULL");
    expect_invalid(ROLES2, CONTENTS2, 2, NULL, "n_out is NULL");
}

// Content bytes that are not valid UTF-8 pass through unchanged and never count as whitespace
// (Python cannot hold them, so this case is not in the fixture file).
static void test_invalid_utf8(void **state) {
    (void)state;
    static const char *const roles[] = {"user"};
    static const char *const contents[] = {" \xff\xc3 \xe3\x80"};
    static const char expected[] = "<bos><|turn>user\n\xff\xc3 \xe3\x80<turn|>\n";
    char buf[64];
    size_t n = 0;
    assert_int_equal(g4_chat_render(roles, contents, 1, 0, buf, sizeof buf, &n), G4_OK);
    assert_int_equal(n, sizeof expected - 1);
    assert_string_equal(buf, expected);
}

// Gemma 3's format: every case of tests/chat/expected_gemma3.txt (transformers over Gemma 3's
// template, tests/chat/make_gemma3_chat_fixtures.py) byte for byte; "!" cases are conversations
// the template rejects (roles not alternating): G4_ERR_INVALID_ARGUMENT naming the rule.
static void test_gemma3_fixtures(void **state) {
    (void)state;
    size_t n = 0;
    char *text = g4_read_file(g4_src_path("tests/chat/expected_gemma3.txt"), &n);
    assert_non_null(text);
    int n_cases = 0, n_failed = 0, n_raise = 0, line_no = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        if (line[0] == '#' || line[0] == '\0') continue;
        const char *last = strrchr(line, ' ');
        const int raises = last && strcmp(last + 1, "!") == 0;
        struct chat_case c = {0};
        parse_case(line, &c);
        cJSON *msgs = NULL;
        assert_int_equal(g4_chat_from_arrays(c.roles, (const char *const *)c.contents, c.n, &msgs),
                         G4_OK);
        char buf[4096];
        size_t got = 0;
        const g4_status st = g4_chat_render_text(G4_CHAT_FORMAT_GEMMA3, msgs, NULL,
                                                 c.add_gen ? G4_CHAT_GEN_PROMPT : 0, buf,
                                                 sizeof buf, &got);
        int ok;
        if (raises) {
            ok = st == G4_ERR_INVALID_ARGUMENT && strstr(g4_last_error(), "must alternate");
            n_raise++;
        } else {
            ok = st == G4_OK && got == c.expected_len && memcmp(buf, c.expected, got) == 0;
        }
        if (!ok) {
            fprintf(stderr, "gemma3 chat case at expected_gemma3.txt line %d: status %d (%s)\n",
                    line_no, st, g4_last_error());
            if (!raises) print_escaped("expected", c.expected, c.expected_len);
            if (st == G4_OK) print_escaped("got     ", buf, got);
        }
        n_failed += !ok;
        n_cases++;
        cJSON_Delete(msgs);
        free_case(&c);
    }
    free(text);
    fprintf(stderr, "gemma3 chat fixtures: %d cases (%d rejected), %d failed\n", n_cases, n_raise,
            n_failed);
    assert_true(n_cases >= 25 && n_raise >= 4);
    assert_int_equal(n_failed, 0);
}

// Gemma 3's template has no tools: tools, tool turns and tool calls are refused, not dropped.
static void test_gemma3_no_tools(void **state) {
    (void)state;
    cJSON *msgs = NULL, *tools = NULL;
    char buf[256];
    size_t n = 0;
    assert_int_equal(g4_chat_parse("[{\"role\":\"user\",\"content\":\"hi\"}]",
                                   "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", &msgs,
                                   &tools),
                     G4_OK);
    assert_int_equal(g4_chat_render_text(G4_CHAT_FORMAT_GEMMA3, msgs, tools, 1, buf, sizeof buf, &n),
                     G4_ERR_UNSUPPORTED);
    assert_non_null(strstr(g4_last_error(), "no tools"));
    // without the tools the same conversation renders
    assert_int_equal(g4_chat_render_text(G4_CHAT_FORMAT_GEMMA3, msgs, NULL, 1, buf, sizeof buf, &n),
                     G4_OK);
    assert_string_equal(buf, "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n");
    cJSON_Delete(msgs);
    cJSON_Delete(tools);
    assert_int_equal(
        g4_chat_parse("[{\"role\":\"user\",\"content\":\"w?\"},{\"role\":\"assistant\",\"tool_calls\":"
                      "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":{}}}]}]",
                      NULL, &msgs, &tools),
        G4_OK);
    assert_int_equal(g4_chat_render_text(G4_CHAT_FORMAT_GEMMA3, msgs, NULL, 1, buf, sizeof buf, &n),
                     G4_ERR_UNSUPPORTED);
    assert_non_null(strstr(g4_last_error(), "message 1"));
    cJSON_Delete(msgs);
    assert_string_equal(g4_chat_end_of_turn(G4_CHAT_FORMAT_GEMMA3), "<end_of_turn>");
    assert_string_equal(g4_chat_end_of_turn(G4_CHAT_FORMAT_GEMMA4), "<turn|>");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_gemma3_fixtures),
        cmocka_unit_test(test_gemma3_no_tools),
        cmocka_unit_test(test_buffer_convention),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_empty_thought_prompt),
        cmocka_unit_test(test_invalid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
