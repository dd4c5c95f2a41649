/* sjlj.c - setjmp/longjmp through wasm exceptions (exnref), as Lua's error handling uses them.
 * Action Throw: a nested call longjmps back to handle; Output counts the catches so far. */
#include "aojson.h"
#include <setjmp.h>

static jmp_buf jb;
static int caught;
static sb_t out;

__attribute__((noinline)) static void deep(int n) {
    if (n == 0) longjmp(jb, 42);
    deep(n - 1);
}

AO_EXPORT("handle") const char *handle(const char *msg, const char *env) {
    char action[32];
    (void)env;
    if (js_tag(msg, "Action", action, sizeof action) < 0) action[0] = 0;
    int v = setjmp(jb);
    if (v == 0 && !strcmp(action, "Throw")) deep(10);
    if (v) caught += v == 42;
    sb_reset(&out);
    sb_puts(&out, "{\"Output\":{\"caught\":");
    sb_int(&out, caught);
    sb_puts(&out, "}}");
    return out.p;
}
