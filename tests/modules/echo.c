/* echo.c - answers every message with exactly what the host handed it:
 *   {"Output":{"Msg":<the message JSON>,"Env":<the env JSON>}}
 * so tests can check the fields a CU gives a module (PROTOCOL.md §5.1 steps 4-5).
 */
#include "aojson.h"

static sb_t out;

AO_EXPORT("handle") const char *handle(const char *msg, const char *env) {
    sb_reset(&out);
    sb_puts(&out, "{\"Output\":{\"Msg\":");
    sb_puts(&out, msg);
    sb_puts(&out, ",\"Env\":");
    sb_puts(&out, env);
    sb_puts(&out, "}}");
    return out.p;
}
