/* aojson.h - a tiny JSON reader and writer for aonet's C test modules.
 *
 * Not a general library: it reads the few fields a test module needs straight out of the message
 * text (no tree is built) and writes result JSON into a growable buffer. Header-only, static.
 */
#ifndef AOJSON_H
#define AOJSON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ------------------------------------------------------------------------------ */
static const char *js_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* The position just past the JSON value at p, or NULL when it is malformed. */
static const char *js_skip(const char *p) {
    p = js_ws(p);
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++)
            if (*p == '\\' && !*++p) return NULL;
        return *p ? p + 1 : NULL;
    }
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = js_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                if (*p != '"' || !(p = js_skip(p))) return NULL;
                p = js_ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = js_skip(p))) return NULL;
            p = js_ws(p);
            if (*p == ',') { p = js_ws(p + 1); continue; }
            return *p == close ? p + 1 : NULL;
        }
    }
    const char *s = p;
    while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '+' || *p == '.' ||
           *p == 'E')
        p++;
    return p == s ? NULL : p;
}

/* The value of `key` in the object at p (keys compared as raw text), or NULL. */
static const char *js_get(const char *p, const char *key) {
    size_t klen = strlen(key);
    p = js_ws(p);
    if (*p != '{') return NULL;
    p = js_ws(p + 1);
    while (*p == '"') {
        const char *k = p + 1, *kend = js_skip(p);
        if (!kend) return NULL;
        p = js_ws(kend);
        if (*p++ != ':') return NULL;
        p = js_ws(p);
        if ((size_t)(kend - 1 - k) == klen && memcmp(k, key, klen) == 0) return p;
        if (!(p = js_skip(p))) return NULL;
        p = js_ws(p);
        if (*p != ',') break;
        p = js_ws(p + 1);
    }
    return NULL;
}

static int js_hex(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

/* Decode the JSON string at p into out (NUL-terminated). Returns its length, or -1. */
static long js_str(const char *p, char *out, size_t cap) {
    size_t n = 0;
    if (!p || *(p = js_ws(p)) != '"' || cap == 0) return -1;
    for (p++; *p != '"'; p++) {
        unsigned long c = (unsigned char)*p;
        if (!c) return -1;
        if (c == '\\') {
            switch (*++p) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                int h = js_hex(p + 1);
                if (h < 0) return -1;
                p += 4;
                c = (unsigned long)h;
                if (c >= 0xD800 && c < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
                    int lo = js_hex(p + 3);
                    if (lo >= 0xDC00 && lo < 0xE000) { c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00); p += 6; }
                }
                char tmp[4];
                int k = 0;
                if (c < 0x80) tmp[k++] = (char)c;
                else if (c < 0x800) { tmp[k++] = 0xC0 | (c >> 6); tmp[k++] = 0x80 | (c & 63); }
                else if (c < 0x10000) { tmp[k++] = 0xE0 | (c >> 12); tmp[k++] = 0x80 | ((c >> 6) & 63); tmp[k++] = 0x80 | (c & 63); }
                else { tmp[k++] = 0xF0 | (c >> 18); tmp[k++] = 0x80 | ((c >> 12) & 63); tmp[k++] = 0x80 | ((c >> 6) & 63); tmp[k++] = 0x80 | (c & 63); }
                if (n + k >= cap) return -1;
                memcpy(out + n, tmp, k);
                n += k;
                continue;
            }
            case '\0': return -1;
            default: c = (unsigned char)*p;   /* \" \\ \/ */
            }
        }
        if (n + 1 >= cap) return -1;
        out[n++] = (char)c;
    }
    out[n] = 0;
    return (long)n;
}

/* The value of the message tag `name` (from "Tags": [{"name","value"}]) into out; -1 if absent. */
static long js_tag(const char *msg, const char *name, char *out, size_t cap) {
    const char *p = js_get(msg, "Tags");
    char key[128];
    if (!p || *(p = js_ws(p)) != '[') return -1;
    p = js_ws(p + 1);
    while (*p == '{') {
        if (js_str(js_get(p, "name"), key, sizeof key) >= 0 && strcmp(key, name) == 0)
            return js_str(js_get(p, "value"), out, cap);
        if (!(p = js_skip(p))) return -1;
        p = js_ws(p);
        if (*p != ',') break;
        p = js_ws(p + 1);
    }
    return -1;
}

/* A non-negative decimal integer (digits only, at most 18 of them); -1 if it is not one. */
static long long js_uint(const char *s) {
    long long v = 0;
    int n = 0;
    if (!*s) return -1;
    for (; *s; s++, n++) {
        if (*s < '0' || *s > '9' || n >= 18) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* ---- writing ------------------------------------------------------------------------------ */
typedef struct { char *p; size_t n, cap; } sb_t;

static void sb_putn(sb_t *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_puts(sb_t *b, const char *s) { sb_putn(b, s, strlen(s)); }
static void sb_reset(sb_t *b) { b->n = 0; sb_putn(b, "", 0); }

static void sb_str(sb_t *b, const char *s) {   /* a JSON string literal */
    sb_putn(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; sb_putn(b, e, 2); }
        else if (c < 0x20) { char e[8]; snprintf(e, sizeof e, "\\u%04x", c); sb_puts(b, e); }
        else sb_putn(b, (const char *)&c, 1);
    }
    sb_putn(b, "\"", 1);
}

static void sb_int(sb_t *b, long long v) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", v);
    sb_puts(b, tmp);
}

/* {"name":n,"value":v} */
static void sb_tag(sb_t *b, const char *name, const char *value) {
    sb_puts(b, "{\"name\":");
    sb_str(b, name);
    sb_puts(b, ",\"value\":");
    sb_str(b, value);
    sb_puts(b, "}");
}

#define AO_EXPORT(name) __attribute__((export_name(name)))
#endif
