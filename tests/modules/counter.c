/* counter.c - a counter process, plus actions that fail in every way a message can fail.
 *
 * Each failing action first changes the state (count += 1), so a test can see that the host rolled
 * the change back: Fail (Result with Error), Trap (unreachable), Loop (runs out of fuel),
 * Bomb (allocates until malloc fails: the Memory-Limit), Exit (proc_exit).
 */
#include "aojson.h"

static long long count;
static sb_t out;

static const char *reply_count(void) {
    sb_reset(&out);
    sb_puts(&out, "{\"Output\":{\"count\":");
    sb_int(&out, count);
    sb_puts(&out, "}}");
    return out.p;
}

AO_EXPORT("handle") const char *handle(const char *msg, const char *env) {
    char action[64], by[32];
    (void)env;
    if (js_tag(msg, "Action", action, sizeof action) < 0) action[0] = 0;
    if (!strcmp(action, "Increment")) {
        long long n = js_tag(msg, "By", by, sizeof by) >= 0 ? js_uint(by) : 1;
        if (n < 0) return "{\"Error\":\"By must be a non-negative integer\"}";
        count += n;
        return reply_count();
    }
    if (!strcmp(action, "Get")) return reply_count();
    count += 1;   /* every action below changes the state and then fails */
    if (!strcmp(action, "Fail")) return "{\"Output\":\"failing on purpose\",\"Error\":\"asked to fail\",\"Messages\":[{\"Target\":\"x\"}]}";
    if (!strcmp(action, "Trap")) __builtin_trap();
    if (!strcmp(action, "Loop")) { for (volatile unsigned long long i = 0;; i++) {} }
    if (!strcmp(action, "Exit")) exit(7);
    if (!strcmp(action, "Bomb")) {
        static void *hoard;   /* a chain of every block, so the compiler cannot elide the mallocs */
        size_t mib = 0;
        for (;;) {
            void **p = malloc(1 << 20);
            if (!p) break;
            memset(p, 1, 1 << 20);
            *p = hoard;
            hoard = p;
            mib++;
        }
        sb_reset(&out);
        sb_puts(&out, "{\"Error\":\"out of memory after ");
        sb_int(&out, (long long)mib);
        sb_puts(&out, " MiB\"}");
        return out.p;
    }
    if (!strcmp(action, "BadJSON")) return "{\"Output\": oops";
    count -= 1;
    return "{\"Output\":\"unknown action\"}";
}
