// Gemma 4 tool declarations: renders OpenAI-style tool JSON
//   {"type": "function", "function": {"name", "description", "parameters": JSON schema, "response"}}
// as the chat template's format_function_declaration does, e.g.
//   declaration:get_weather{description:<|"|>Weather<|"|>,parameters:{properties:{city:{
//   description:<|"|>City<|"|>,type:<|"|>STRING<|"|>}},required:[<|"|>city<|"|>],type:<|"|>OBJECT<|"|>}}
// The caller wraps each one in <|tool> ... <tool|> inside the system turn.
#ifndef G4_TOOL_DECL_H
#define G4_TOOL_DECL_H

#include <cjson/cJSON.h>

#include "chat_emit.h"
#include "status.h"

// The "function" object of a tool: tool["function"], or the tool itself when it has a "name"
// but no "function" (a bare declaration). NULL if neither (G4_ERR_INVALID_ARGUMENT in checks).
const cJSON *g4_tool_decl_function(const cJSON *tool);

// Checks a tools array (each entry an object with a function name): G4_ERR_INVALID_ARGUMENT
// naming the entry otherwise.
g4_status g4_tool_decl_check(const cJSON *tools);

// format_function_declaration(tool) (without the <|tool> wrapper).
void g4_tool_decl_format(struct g4_chat_emit *e, const cJSON *tool);

#endif
