// Gemma 4's function-call syntax, both ways. The chat template writes a call as
//   <|tool_call>call:NAME{key:VALUE,...}<tool_call|>
// with VALUE in the template's format_argument syntax: strings between <|"|> delimiters (no
// escaping), numbers and true/false/null as Python prints them, {key:VALUE,...} objects with
// bare keys (or <|"|>-quoted ones where escape_keys is set), [VALUE,...] arrays; object keys in
// Jinja's dictsort order. Tool results go back as
//   <|tool_response>response:NAME{key:VALUE,...}<tool_response|>
// (a non-object result as response:NAME{value:VALUE}).
#ifndef G4_TOOL_CALL_H
#define G4_TOOL_CALL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "chat_emit.h"
#include "status.h"

#define G4_TOOL_CALL_DELIM "<|\"|>"

// The template's format_argument(v, escape_keys).
void g4_tool_call_format_argument(struct g4_chat_emit *e, const cJSON *v, int escape_keys);
// "call:NAME{k:v,...}" (between the <|tool_call> and <tool_call|> tokens, not emitted here).
// args: an object, or NULL/null for none; any other kind is G4_ERR_INVALID_ARGUMENT.
void g4_tool_call_format(struct g4_chat_emit *e, const char *name, const cJSON *args);
// The whole <|tool_response>...<tool_response|> block for one result.
void g4_tool_call_format_response(struct g4_chat_emit *e, const char *name, const cJSON *result);

// Parses the text between <|tool_call> and <tool_call|> (the delimiter token appears as its text
// "<|\"|>") into the function name (malloc'd) and a JSON object of its arguments. Accepts what
// the template writes, plus <|"|>-quoted keys and, leniently, bare words as strings. Errors:
// G4_ERR_FORMAT with the byte offset and what was expected (truncated call, unbalanced braces,
// missing "call:" or name, text after the closing brace).
g4_status g4_tool_call_parse(const char *text, size_t len, char **name, cJSON **args);

#endif
