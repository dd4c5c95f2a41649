/* probe.c - reports what the WASI host shows a module: clock, random, stdout, env, args, files.
 *
 * Time: clock_gettime(REALTIME) in ns; Random: 16 bytes of getentropy as hex; Print: writes Data
 * to stdout and stderr; Env: the environment; Read: a file's text (tag Path); List: a directory's
 * entries (tag Path); Stat: a file's size; Write: tries to create a file (tag Path); Seek: reads the
 * last 4 bytes of a file through fseek. Errors are reported in Output as "errno:<text>".
 */
#include "aojson.h"
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static sb_t out;

static const char *reply(const char *text) {
    sb_reset(&out);
    sb_puts(&out, "{\"Output\":");
    sb_str(&out, text);
    sb_puts(&out, "}");
    return out.p;
}

static const char *fail(void) {
    char tmp[128];
    snprintf(tmp, sizeof tmp, "errno:%s", strerror(errno));
    return reply(tmp);
}

AO_EXPORT("handle") const char *handle(const char *msg, const char *env) {
    static char action[64], path[512], data[1024], text[65536];
    (void)env;
    if (js_tag(msg, "Action", action, sizeof action) < 0) action[0] = 0;
    if (js_tag(msg, "Path", path, sizeof path) < 0) path[0] = 0;
    if (js_str(js_get(msg, "Data"), data, sizeof data) < 0) data[0] = 0;
    if (!strcmp(action, "Time")) {
        struct timespec ts, mono;
        clock_gettime(CLOCK_REALTIME, &ts);
        clock_gettime(CLOCK_MONOTONIC, &mono);
        snprintf(text, sizeof text, "%lld %lld %lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec,
                 (long long)mono.tv_sec * 1000000000LL + mono.tv_nsec, (long long)time(NULL));
        return reply(text);
    }
    if (!strcmp(action, "Random")) {
        unsigned char buf[16];
        if (getentropy(buf, sizeof buf)) return fail();
        for (int i = 0; i < 16; i++) snprintf(text + 2 * i, 3, "%02x", buf[i]);
        return reply(text);
    }
    if (!strcmp(action, "Print")) {
        printf("out:%s\n", data);
        fflush(stdout);
        fprintf(stderr, "err:%s\n", data);
        return reply("printed");
    }
    if (!strcmp(action, "Env")) {
        text[0] = 0;
        for (char **e = environ; e && *e; e++) { strcat(text, *e); strcat(text, ";"); }
        return reply(text);
    }
    if (!strcmp(action, "Read") || !strcmp(action, "Seek")) {
        FILE *f = fopen(path, "rb");
        if (!f) return fail();
        size_t n;
        if (!strcmp(action, "Seek")) {
            if (fseek(f, -4, SEEK_END)) { fclose(f); return fail(); }
            long pos = ftell(f);
            n = fread(text, 1, 4, f);
            text[n] = 0;
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%ld:", pos);
            memmove(text + strlen(tmp), text, n + 1);
            memcpy(text, tmp, strlen(tmp));
        } else {
            n = fread(text, 1, sizeof text - 1, f);
            text[n] = 0;
        }
        fclose(f);
        return reply(text);
    }
    if (!strcmp(action, "List")) {
        DIR *d = opendir(path);
        struct dirent *e;
        if (!d) return fail();
        text[0] = 0;
        while ((e = readdir(d))) {
            strcat(text, e->d_name);
            strcat(text, e->d_type == DT_DIR ? "/," : ",");
        }
        closedir(d);
        return reply(text);
    }
    if (!strcmp(action, "Stat")) {
        struct stat st;
        if (stat(path, &st)) return fail();
        snprintf(text, sizeof text, "size=%lld dir=%d mtime=%lld", (long long)st.st_size, S_ISDIR(st.st_mode),
                 (long long)st.st_mtime);
        return reply(text);
    }
    if (!strcmp(action, "Write")) {
        FILE *f = fopen(path, "w");
        if (!f) return fail();
        fclose(f);
        return reply("wrote?!");
    }
    if (!strcmp(action, "Exit")) exit(3);
    return reply("");
}
