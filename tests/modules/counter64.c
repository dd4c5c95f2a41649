/* counter64.c - a counter for wasm64 (memory64, i64 pointers), freestanding: no libc exists for
 * wasm64 in zig, so this module brings its own allocator and imports WASI directly (pointers are
 * i64 there too). Actions: Increment, Get, Time (clock_time_get), Print (fd_write). */
typedef unsigned long size_t;
typedef unsigned long long u64;

#define WASI(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(name)))
WASI("clock_time_get") int wasi_clock_time_get(int id, u64 precision, u64 *out);
WASI("fd_write") int wasi_fd_write(int fd, const void *iovs, size_t n, size_t *written);

extern unsigned char __heap_base;
static size_t top, last;

/* A stack allocator: the host frees in the reverse order of malloc (env, then msg). */
__attribute__((export_name("malloc"))) void *malloc(size_t n) {
    if (!top) top = (size_t)&__heap_base;
    size_t p = (top + 15) & ~(size_t)15, end = p + n;
    size_t have = __builtin_wasm_memory_size(0) * 65536UL;
    if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == (size_t)-1) return 0;
    last = top;
    top = end;
    return (void *)p;
}
__attribute__((export_name("free"))) void free(void *p) {
    if (p && (size_t)p >= last && (size_t)p < top) top = (size_t)p;  /* pops the newest block */
}

static long long count;
static char out[256];

static int has(const char *s, const char *needle) {
    for (; *s; s++) {
        const char *a = s, *b = needle;
        while (*b && *a == *b) a++, b++;
        if (!*b) return 1;
    }
    return 0;
}

static char *put(char *o, const char *s) { while (*s) *o++ = *s++; return o; }
static char *put_int(char *o, long long v) {
    char tmp[24];
    int n = 0;
    if (v < 0) { *o++ = '-'; v = -v; }
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *o++ = tmp[--n];
    return o;
}

__attribute__((export_name("handle"))) char *handle(const char *msg, const char *env) {
    (void)env;
    char *o = out;
    if (has(msg, "\"value\":\"Increment\"")) count++;
    if (has(msg, "\"value\":\"Time\"")) {
        u64 t = 0;
        wasi_clock_time_get(0, 1, &t);
        o = put(o, "{\"Output\":{\"ns\":");
        o = put_int(o, (long long)t);
        o = put(o, "}}");
        *o = 0;
        return out;
    }
    if (has(msg, "\"value\":\"Print\"")) {
        struct { const char *p; size_t n; } iov[2] = {{"wasm", 4}, {"64\n", 3}};
        size_t written = 0;
        wasi_fd_write(1, iov, 2, &written);
        o = put(o, "{\"Output\":{\"written\":");
        o = put_int(o, (long long)written);
        o = put(o, "}}");
        *o = 0;
        return out;
    }
    o = put(o, "{\"Output\":{\"count\":");
    o = put_int(o, count);
    o = put(o, ",\"where\":");
    o = put_int(o, (long long)(size_t)&count > 0);
    o = put(o, "}}");
    *o = 0;
    return out;
}
