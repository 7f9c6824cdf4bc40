// A program built against an installed gemma4 (tests/install/test_install.sh): loads a model,
// generates a few tokens greedily and prints them. usage: app MODEL_DIR
#include <stdio.h>

#include <gemma4.h>

static int32_t print_piece(const char *piece, size_t len, int32_t token, void *user) {
    (void)token;
    (void)user;
    fwrite(piece, 1, len, stdout);
    return 0;
}

int main(int argc, char **argv) {
    gemma4_model *model;
    gemma4_session *chat;
    if (argc != 2 || gemma4_load(argv[1], GEMMA4_DEVICE_CPU, 0, 256, 1, &model) ||
        gemma4_session_new(model, 0, &chat)) {
        fprintf(stderr, "app: %s\n", argc == 2 ? gemma4_last_error() : "usage: app MODEL_DIR");
        return 1;
    }
    gemma4_model_free(model);
    const char *roles[] = {"user"}, *contents[] = {"Hello"};
    gemma4_status st = gemma4_chat_generate(chat, roles, contents, 1, 8, print_piece, NULL);
    printf("\nlibgemma4 %s: %s\n", gemma4_version(), gemma4_status_name(st));
    gemma4_session_free(chat);
    return st != GEMMA4_OK;
}
