/* pingpong.c - the MU's end-to-end test process: ping-pong, fan-out, spawns and cron ticks.
 *
 * State: pings, hits, ticks, spawned (counters), so tests can check every message arrived once.
 * Actions (tag Action):
 *   Start {Peer, Rounds}  -> Ping {Count=1, Rounds} to Peer
 *   Ping  {Count, Rounds} -> pings += 1; if Count < Rounds: Ping {Count+1, Rounds} back to From
 *   Fan   {N}, Data = comma-separated pids -> N Hit messages {Seq=i}, round-robin over the pids
 *   Hit                   -> hits += 1
 *   Spawn {Module, N}     -> N spawns of Module (tag Name=kid-i)
 *   Spawned               -> spawned += 1 (the MU's notice)
 *   Tick (a cron message, tag Sink) -> ticks += 1; Tock to Sink
 *   Tock                  -> hits += 1
 *   BadTags               -> a message whose tag value is a number (the MU must record an error)
 *   Store {To}            -> a message to To (a wallet, not a process)
 *   Count                 -> Output {"pings","hits","ticks","spawned"}
 * Output is always the counters, so any result shows the state.
 */
#include "aojson.h"

static long long pings, hits, ticks, spawned;
static sb_t out;

static void counters(void) {
    sb_puts(&out, "{\"Output\":{\"pings\":");
    sb_int(&out, pings);
    sb_puts(&out, ",\"hits\":");
    sb_int(&out, hits);
    sb_puts(&out, ",\"ticks\":");
    sb_int(&out, ticks);
    sb_puts(&out, ",\"spawned\":");
    sb_int(&out, spawned);
    sb_puts(&out, "}");
}

static void message(const char *target, const char *action, const char *k1, const char *v1,
                    const char *k2, const char *v2) {
    sb_puts(&out, "{\"Target\":");
    sb_str(&out, target);
    sb_puts(&out, ",\"Data\":\"pp\",\"Tags\":[");
    sb_tag(&out, "Action", action);
    if (k1) { sb_puts(&out, ","); sb_tag(&out, k1, v1); }
    if (k2) { sb_puts(&out, ","); sb_tag(&out, k2, v2); }
    sb_puts(&out, "]}");
}

static char *fmt(char *buf, long long v) { snprintf(buf, 24, "%lld", v); return buf; }

AO_EXPORT("handle") const char *handle(const char *msg, const char *env) {
    static char action[64], from[128], peer[128], module[128], sink[128], num[32], rounds[32];
    static char data[65536];
    char a[24], b[24];
    (void)env;
    if (js_tag(msg, "Action", action, sizeof action) < 0) action[0] = 0;
    if (js_str(js_get(msg, "From"), from, sizeof from) < 0) from[0] = 0;
    sb_reset(&out);
    if (!strcmp(action, "Start")) {
        if (js_tag(msg, "Peer", peer, sizeof peer) < 0) return "{\"Error\":\"Start needs Peer\"}";
        if (js_tag(msg, "Rounds", rounds, sizeof rounds) < 0) strcpy(rounds, "1");
        counters();
        sb_puts(&out, ",\"Messages\":[");
        message(peer, "Ping", "Count", "1", "Rounds", rounds);
        sb_puts(&out, "]}");
        return out.p;
    }
    if (!strcmp(action, "Ping")) {
        long long n = js_tag(msg, "Count", num, sizeof num) >= 0 ? js_uint(num) : 0;
        long long r = js_tag(msg, "Rounds", rounds, sizeof rounds) >= 0 ? js_uint(rounds) : 0;
        pings += 1;
        counters();
        if (n < r) {
            sb_puts(&out, ",\"Messages\":[");
            message(from, "Ping", "Count", fmt(a, n + 1), "Rounds", fmt(b, r));
            sb_puts(&out, "]");
        }
        sb_puts(&out, "}");
        return out.p;
    }
    if (!strcmp(action, "Fan")) {
        long long n = js_tag(msg, "N", num, sizeof num) >= 0 ? js_uint(num) : 0;
        if (js_str(js_get(msg, "Data"), data, sizeof data) < 0 || !data[0]) return "{\"Error\":\"Fan needs Data\"}";
        static char *pids[256];
        int np = 0;
        for (char *p = strtok(data, ","); p && np < 256; p = strtok(NULL, ",")) pids[np++] = p;
        counters();
        sb_puts(&out, ",\"Messages\":[");
        for (long long i = 0; i < n; i++) {
            if (i) sb_puts(&out, ",");
            message(pids[i % np], "Hit", "Seq", fmt(a, i), NULL, NULL);
        }
        sb_puts(&out, "]}");
        return out.p;
    }
    if (!strcmp(action, "Hit") || !strcmp(action, "Tock")) hits += 1;
    if (!strcmp(action, "Spawned")) spawned += 1;
    if (!strcmp(action, "Spawn")) {
        long long n = js_tag(msg, "N", num, sizeof num) >= 0 ? js_uint(num) : 1;
        if (js_tag(msg, "Module", module, sizeof module) < 0) return "{\"Error\":\"Spawn needs Module\"}";
        counters();
        sb_puts(&out, ",\"Spawns\":[");
        for (long long i = 0; i < n; i++) {
            if (i) sb_puts(&out, ",");
            sb_puts(&out, "{\"Data\":\"child\",\"Tags\":[");
            sb_tag(&out, "Module", module);
            sb_puts(&out, ",");
            sb_tag(&out, "Name", fmt(a, i));
            sb_puts(&out, "]}");
        }
        sb_puts(&out, "]}");
        return out.p;
    }
    if (!strcmp(action, "Tick")) {
        ticks += 1;
        counters();
        if (js_tag(msg, "Sink", sink, sizeof sink) >= 0) {
            sb_puts(&out, ",\"Messages\":[");
            message(sink, "Tock", "Tick", fmt(a, ticks), NULL, NULL);
            sb_puts(&out, "]");
        }
        sb_puts(&out, "}");
        return out.p;
    }
    if (!strcmp(action, "BadTags")) {
        counters();
        sb_puts(&out, ",\"Messages\":[{\"Target\":");
        sb_str(&out, from);
        sb_puts(&out, ",\"Tags\":[{\"name\":\"Amount\",\"value\":5}]}]}");
        return out.p;
    }
    if (!strcmp(action, "Store")) {
        if (js_tag(msg, "To", peer, sizeof peer) < 0) return "{\"Error\":\"Store needs To\"}";
        counters();
        sb_puts(&out, ",\"Messages\":[");
        message(peer, "Note", NULL, NULL, NULL, NULL);
        sb_puts(&out, "]}");
        return out.p;
    }
    counters();
    sb_puts(&out, "}");
    return out.p;
}
