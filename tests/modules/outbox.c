/* outbox.c - a process that sends messages, spawns processes and assigns messages.
 *
 * Send: a message to tag To with the message's Data; Spawn: a process of tag Module;
 * Assign: message tag Message to processes in tags P1 and P2; All: all three at once.
 */
#include "aojson.h"

static sb_t out;

static void send(const char *to, const char *data) {
    sb_puts(&out, "{\"Target\":");
    sb_str(&out, to);
    sb_puts(&out, ",\"Data\":");
    sb_str(&out, data);
    sb_puts(&out, ",\"Anchor\":\"00000000000000000000000000000001\",\"Tags\":[");
    sb_tag(&out, "Action", "Ping");
    sb_puts(&out, "]}");
}

static void spawn(const char *module) {
    sb_puts(&out, "{\"Data\":\"child\",\"Tags\":[");
    sb_tag(&out, "Module", module);
    sb_puts(&out, ",");
    sb_tag(&out, "Name", "kid");
    sb_puts(&out, "]}");
}

static void assign(const char *message, const char *p1, const char *p2) {
    sb_puts(&out, "{\"Processes\":[");
    sb_str(&out, p1);
    sb_puts(&out, ",");
    sb_str(&out, p2);
    sb_puts(&out, "],\"Message\":");
    sb_str(&out, message);
    sb_puts(&out, "}");
}

AO_EXPORT("handle") const char *handle(const char *msg, const char *env) {
    static char action[64], to[128], data[4096], module[128], message[128], p1[128], p2[128];
    (void)env;
    if (js_tag(msg, "Action", action, sizeof action) < 0) action[0] = 0;
    if (js_tag(msg, "To", to, sizeof to) < 0) strcpy(to, "nobody");
    if (js_str(js_get(msg, "Data"), data, sizeof data) < 0) data[0] = 0;
    if (js_tag(msg, "Module", module, sizeof module) < 0) module[0] = 0;
    if (js_tag(msg, "Message", message, sizeof message) < 0) message[0] = 0;
    if (js_tag(msg, "P1", p1, sizeof p1) < 0) p1[0] = 0;
    if (js_tag(msg, "P2", p2, sizeof p2) < 0) p2[0] = 0;
    int all = !strcmp(action, "All");
    sb_reset(&out);
    sb_puts(&out, "{\"Output\":");
    sb_str(&out, action);
    if (all || !strcmp(action, "Send")) { sb_puts(&out, ",\"Messages\":["); send(to, data); sb_puts(&out, "]"); }
    if (all || !strcmp(action, "Spawn")) { sb_puts(&out, ",\"Spawns\":["); spawn(module); sb_puts(&out, "]"); }
    if (all || !strcmp(action, "Assign")) { sb_puts(&out, ",\"Assignments\":["); assign(message, p1, p2); sb_puts(&out, "]"); }
    sb_puts(&out, "}");
    return out.p;
}
