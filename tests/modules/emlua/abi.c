/* The emlua module for ao-loader's newer emscripten glues (`wasm32-unknown-emscripten3`, with
 * EMLUA_ABI=3, and `wasm32-unknown-emscripten4`, EMLUA_ABI=4), built with Debian's emscripten 3.1.6.
 *
 * 3.1.6's libc calls its JavaScript helpers with the 3.1.6 names and signatures; the newer glues have
 * other names and, for the time functions, other signatures. A JavaScript import links whatever its
 * signature, so a mismatch would not fail to link, it would silently corrupt memory: every helper the
 * module uses is therefore redefined here (strong symbols over 3.1.6's weak ones) to call the import
 * exactly as the newer libc calls it. See docs/emscripten.md ("What the newer glues expect").
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <emscripten.h>
#include "lua.h"
#include "lauxlib.h"

#define HOST(name) __attribute__((import_module("env"), import_name(name)))

#if EMLUA_ABI >= 4
#define MEMCPY_IMPORT "_emscripten_memcpy_js"
#else
#define MEMCPY_IMPORT "emscripten_memcpy_js"
#endif

/* -- i64 results: the high word travels through a register in wasm (newer emscripten keeps it in the
 * module and exports the setter; 3.1.6 imported both from JavaScript). -- */
static int32_t temp_ret0;
EMSCRIPTEN_KEEPALIVE void setTempRet0(int32_t v) { temp_ret0 = v; }   /* binaryen's legalization finds it by name */
#if EMLUA_ABI >= 4
EMSCRIPTEN_KEEPALIVE void _emscripten_tempret_set(int32_t v) { temp_ret0 = v; }   /* emscripten4's name */
#endif
int32_t getTempRet0(void) { return temp_ret0; }   /* binaryen's i64 legalization finds it by name */

/* -- memcpy of >= 512 bytes: same job (copy n bytes, no overlap), newer name, no result -- */
HOST(MEMCPY_IMPORT) void host_memcpy_js(void *dest, const void *src, size_t n);
void *emscripten_memcpy_big(void *restrict dest, const void *restrict src, size_t n) {
  host_memcpy_js(dest, src, n);
  return dest;
}

/* -- system(): the glue answers 0 for NULL and -ENOSYS otherwise -- */
HOST("_emscripten_system") int host_system(const char *cmd);
int system(const char *cmd) {
  int r = host_system(cmd);
  if (r < 0) { errno = -r; return -1; }
  return r;
}

#if EMLUA_ABI >= 4
HOST("_abort_js") _Noreturn void host_abort(void);
_Noreturn void abort(void) { host_abort(); }
#endif

/* -- time: the glue's helpers take time_t as a (low, high) pair and the zone names as buffers -- */
HOST("_tzset_js") void host_tzset(long *timezone, int *daylight, char *std_name, char *dst_name);
HOST("_gmtime_js") void host_gmtime(int32_t lo, int32_t hi, struct tm *tm);
HOST("_localtime_js") void host_localtime(int32_t lo, int32_t hi, struct tm *tm);
HOST("_mktime_js") int32_t host_mktime(struct tm *tm);

#if EMLUA_ABI >= 4
#define TZ_BUF 17      /* TZNAME_MAX + 1 of the newer libc; the emscripten4 glue writes at most 17 bytes */
#else
#define TZ_BUF 7       /* the emscripten3 glue writes at most 7 bytes */
#endif
long timezone = 0;
int daylight = 0;
char *tzname[2] = {0, 0};

void tzset(void) {
  static int done = 0;
  static char std_name[TZ_BUF], dst_name[TZ_BUF];
  if (done) return;
  host_tzset(&timezone, &daylight, std_name, dst_name);
  tzname[0] = std_name;
  tzname[1] = dst_name;
  done = 1;
}

time_t mktime(struct tm *tm) {
  tzset();
  uint32_t lo = (uint32_t)host_mktime(tm);
  int64_t hi = getTempRet0();
  return (time_t)((hi << 32) | lo);
}

struct tm *__localtime_r(const time_t *restrict t, struct tm *restrict tm) {
  tzset();
  host_localtime((int32_t)*t, (int32_t)((int64_t)*t >> 32), tm);
  tm->__tm_zone = tm->tm_isdst ? tzname[1] : tzname[0];
  return tm;
}

struct tm *__gmtime_r(const time_t *restrict t, struct tm *restrict tm) {
  tzset();
  host_gmtime((int32_t)*t, (int32_t)((int64_t)*t >> 32), tm);
  tm->tm_isdst = 0;
  tm->__tm_gmtoff = 0;
  tm->__tm_zone = "GMT";
  return tm;
}

struct tm *localtime_r(const time_t *restrict t, struct tm *restrict tm) { return __localtime_r(t, tm); }
struct tm *gmtime_r(const time_t *restrict t, struct tm *restrict tm) { return __gmtime_r(t, tm); }
struct tm *localtime(const time_t *t) { static struct tm buf; return __localtime_r(t, &buf); }
struct tm *gmtime(const time_t *t) { static struct tm buf; return __gmtime_r(t, &buf); }

#if EMLUA_ABI >= 4
/* -- emscripten4: the glue never calls main(); the Lua state is born in a constructor instead. The
 * glue's one async import (WeaveDrive) is exposed to Lua as drive_open(path) -> number: without a
 * WeaveDrive extension the loader resolves it to null (0) after a full Asyncify unwind and rewind;
 * gas_used() returns the glue's metering_gasUsed(). -- */
int emlua_main(void);
__attribute__((constructor(1000))) static void emlua_boot_ctor(void) { emlua_main(); }

HOST("__asyncjs__weavedrive_open") int host_weavedrive_open(const char *path, const char *mode);

static int l_drive_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  lua_pushinteger(L, host_weavedrive_open(path, mode));
  return 1;
}

/* the glue's metering_gasUsed: the gas this message has used so far (a JavaScript number: f64) */
HOST("metering_gasUsed") double host_gas_used(void);

static int l_gas_used(lua_State *L) {
  lua_pushnumber(L, host_gas_used());
  return 1;
}

void emlua_open_extra(lua_State *L) {
  lua_pushcfunction(L, l_drive_open);
  lua_setglobal(L, "drive_open");
  lua_pushcfunction(L, l_gas_used);
  lua_setglobal(L, "gas_used");
}
#endif
