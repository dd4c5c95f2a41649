/* The emlua module for ao-loader's `wasm64-unknown-emscripten-draft_2024_02_15` glue, built with
 * Debian's emscripten 3.1.6 and -sMEMORY64=1.
 *
 * 3.1.6's wasm64 libc imports its JavaScript helpers with 3.1.6's names and C signatures; the glue
 * (a newer emscripten's, with WASM_BIGINT: every pointer/size_t crosses as an i64 BigInt) has other
 * names and, for several helpers, other signatures or other semantics. A JavaScript import links
 * whatever its wasm signature (only an i64 result forces a BigInt), so a mismatch would not fail to
 * link, it would silently misbehave: every helper the module uses is redefined here (strong symbols
 * over 3.1.6's weak ones or over the undefined references that would become imports) to call the
 * import exactly as the newer libc calls it. The build report (build.py `IMPORTS`) lists the result.
 *
 * Two 3.1.6 wasm64 bugs are worked around as well: setjmp (see ldo64.h) and compiler-rt's long double
 * comparisons, which return `long` (i64) where clang's calls expect `int` (i32): wasm-ld turns the
 * mismatched calls (in strtod and fmodl) into traps, so they are redefined here with the i32 result.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <emscripten.h>
#include "lua.h"
#include "lauxlib.h"

#define HOST(name) __attribute__((import_module("env"), import_name(name)))
#define AT_FDCWD_ (-100)

/* ---- boot: the glue never calls main(); the Lua state is born in a constructor (glue.c) ---- */
int emlua_main(void);
__attribute__((constructor(1000))) static void emlua_boot_ctor(void) { emlua_main(); }

/* ---- Lua's error recovery (ldo64.h): emscripten's SjLj protocol, by hand ---- */
extern _Thread_local uintptr_t __THREW__;   /* compiler-rt; set by the export setThrew */
HOST("invoke_vjj") void host_invoke_vjj(void (*fn)(lua_State *, void *), lua_State *L, void *ud);
HOST("_emscripten_throw_longjmp") _Noreturn void host_throw_longjmp(void);

void emlua64_try(lua_State *L, void (*fn)(lua_State *, void *), void *ud) {
  __THREW__ = 0;
  host_invoke_vjj(fn, L, ud);
  __THREW__ = 0;   /* a throw only ends the call: Lua's status is in its lua_longjmp already */
}

_Noreturn void emlua64_throw(void) { host_throw_longjmp(); }

/* the glue's invoke_vjj calls this with the table index as a JavaScript number (an i32) */
EMSCRIPTEN_KEEPALIVE void dynCall_vjj(int32_t index, void *a1, void *a2) {
  ((void (*)(void *, void *))(uintptr_t)(uint32_t)index)(a1, a2);
}

/* ---- long double comparisons with the i32 result clang expects (compiler-rt's semantics) ---- */
typedef struct { uint64_t lo, hi; } quad_bits;

static quad_bits bits_of(long double x) {
  quad_bits q;
  memcpy(&q, &x, sizeof q);
  return q;
}

/* -1 a < b, 0 a == b, 1 a > b; `unordered` when either is a NaN */
static int quad_cmp(long double a, long double b, int unordered) {
  quad_bits x = bits_of(a), y = bits_of(b);
  const uint64_t sign = UINT64_C(1) << 63, inf_hi = UINT64_C(0x7fff000000000000);
  uint64_t xa = x.hi & ~sign, ya = y.hi & ~sign;
  if (xa > inf_hi || (xa == inf_hi && x.lo) || ya > inf_hi || (ya == inf_hi && y.lo)) return unordered;
  if (!(xa | x.lo | ya | y.lo)) return 0;                       /* +0 == -0 */
  int xneg = (x.hi & sign) != 0, yneg = (y.hi & sign) != 0;
  if (xneg != yneg) return xneg ? -1 : 1;
  int mag = (xa != ya) ? (xa < ya ? -1 : 1) : (x.lo != y.lo ? (x.lo < y.lo ? -1 : 1) : 0);
  return xneg ? -mag : mag;
}

int __letf2(long double a, long double b) { return quad_cmp(a, b, 1); }
int __eqtf2(long double a, long double b) { return quad_cmp(a, b, 1); }
int __lttf2(long double a, long double b) { return quad_cmp(a, b, 1); }
int __netf2(long double a, long double b) { return quad_cmp(a, b, 1); }
int __getf2(long double a, long double b) { return quad_cmp(a, b, -1); }
int __gttf2(long double a, long double b) { return quad_cmp(a, b, -1); }
int __unordtf2(long double a, long double b) { return quad_cmp(a, b, 2) == 2; }

/* ---- syscalls: 3.1.6 calls __syscall_NAME(long...) (varargs as a pointer to longs); the glue has
 * the newer *at() names and int/pointer parameters. A one-long buffer serves the glue's vararg
 * readers for int (low 4 bytes, little endian) and pointer (8 bytes) alike. ---- */
HOST("__syscall_openat") int host_openat(int dirfd, const char *path, int flags, void *varargs);
HOST("__syscall_fcntl64") int host_fcntl64(int fd, int cmd, void *varargs);
HOST("__syscall_ioctl") int host_ioctl(int fd, int op, void *varargs);
HOST("__syscall_dup3") int host_dup3(int fd, int newfd, int flags);
HOST("__syscall_unlinkat") int host_unlinkat(int dirfd, const char *path, int flags);
HOST("__syscall_rmdir") int host_rmdir(const char *path);
HOST("__syscall_renameat") int host_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
HOST("__syscall_lstat64") int host_lstat64(const char *path, void *buf);

long __syscall_open(long path, long flags, ...) {
  long mode[1] = {0};
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode[0] = va_arg(ap, long);
    va_end(ap);
  }
  return host_openat(AT_FDCWD_, (const char *)path, (int)flags, mode);
}

long __syscall_fcntl64(long fd, long cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  long arg[1] = {va_arg(ap, long)};
  va_end(ap);
  return host_fcntl64((int)fd, (int)cmd, arg);
}

long __syscall_ioctl(long fd, long op, ...) {
  va_list ap;
  va_start(ap, op);
  long arg[1] = {va_arg(ap, long)};
  va_end(ap);
  return host_ioctl((int)fd, (int)op, arg);
}

long __syscall_dup3(long fd, long newfd, long flags) { return host_dup3((int)fd, (int)newfd, (int)flags); }
long __syscall_unlink(long path) { return host_unlinkat(AT_FDCWD_, (const char *)path, 0); }
long __syscall_rmdir(long path) { return host_rmdir((const char *)path); }
long __syscall_rename(long oldpath, long newpath) {
  return host_renameat(AT_FDCWD_, (const char *)oldpath, AT_FDCWD_, (const char *)newpath);
}

/* the glue writes the newer struct stat (104 bytes); 3.1.6's wasm64 struct stat is laid out
 * differently, so the fields are copied over one by one */
struct glue_stat {
  int32_t dev, mode; uint64_t nlink; int32_t uid, gid, rdev, pad; int64_t size;
  int32_t blksize, blocks; int64_t atime; uint64_t atime_ns; int64_t mtime; uint64_t mtime_ns;
  int64_t ctime; uint64_t ctime_ns; uint64_t ino;
};
_Static_assert(sizeof(struct glue_stat) == 104, "the glue's struct stat is 104 bytes");

long __syscall_lstat64(long path, long buf) {
  struct glue_stat g;
  memset(&g, 0, sizeof g);
  int r = host_lstat64((const char *)path, &g);
  if (r == 0) {
    struct stat *st = (struct stat *)buf;
    memset(st, 0, sizeof *st);
    st->st_dev = (dev_t)g.dev; st->st_mode = (mode_t)g.mode; st->st_nlink = (nlink_t)g.nlink;
    st->st_uid = (uid_t)g.uid; st->st_gid = (gid_t)g.gid; st->st_rdev = (dev_t)g.rdev;
    st->st_size = g.size; st->st_blksize = g.blksize; st->st_blocks = g.blocks;
    st->st_atim.tv_sec = g.atime; st->st_atim.tv_nsec = (long)g.atime_ns;
    st->st_mtim.tv_sec = g.mtime; st->st_mtim.tv_nsec = (long)g.mtime_ns;
    st->st_ctim.tv_sec = g.ctime; st->st_ctim.tv_nsec = (long)g.ctime_ns;
    st->st_ino = g.ino;
  }
  return r;
}

/* ---- small helpers with a newer name or no result ---- */
HOST("_emscripten_memcpy_js") void host_memcpy_js(void *dest, const void *src, size_t n);
void *emscripten_memcpy_big(void *restrict dest, const void *restrict src, size_t n) {
  host_memcpy_js(dest, src, n);
  return dest;
}

HOST("_emscripten_system") int host_system(const char *cmd);
int system(const char *cmd) {
  int r = host_system(cmd);
  if (r < 0) { errno = -r; return -1; }
  return r;
}

HOST("_abort_js") _Noreturn void host_abort(void);
_Noreturn void abort(void) { host_abort(); }

/* 3.1.6's setjmp support object (pulled in for the export setThrew) calls setTempRet0 */
static int32_t temp_ret0;
void setTempRet0(int32_t v) { temp_ret0 = v; }
int32_t getTempRet0(void) { return temp_ret0; }

/* ---- time: the glue's Date.now counter; its helpers take the time value (not a pointer) and the
 * zone names as 17-byte buffers ---- */
HOST("emscripten_date_now") double host_date_now(void);
HOST("_tzset_js") void host_tzset(long *timezone, int *daylight, char *std_name, char *dst_name);
HOST("_gmtime_js") void host_gmtime(time_t t, struct tm *tm);
HOST("_localtime_js") void host_localtime(time_t t, struct tm *tm);
HOST("_mktime_js") time_t host_mktime(struct tm *tm);

time_t time(time_t *t) {
  time_t now = (time_t)(host_date_now() / 1000.0);
  if (t) *t = now;
  return now;
}

clock_t clock(void) { return (clock_t)0; }

double difftime(time_t a, time_t b) { return (double)a - (double)b; }

int __clock_gettime(clockid_t clk, struct timespec *ts) {
  (void)clk;
  double ms = host_date_now();
  ts->tv_sec = (time_t)(ms / 1000.0);
  ts->tv_nsec = (long)((ms - (double)ts->tv_sec * 1000.0) * 1000000.0);
  return 0;
}

#define TZ_BUF 17      /* TZNAME_MAX + 1 of the newer libc: the glue writes at most 17 bytes */
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
  return host_mktime(tm);
}

struct tm *__localtime_r(const time_t *restrict t, struct tm *restrict tm) {
  tzset();
  host_localtime(*t, tm);
  tm->__tm_zone = tm->tm_isdst ? tzname[1] : tzname[0];
  return tm;
}

struct tm *__gmtime_r(const time_t *restrict t, struct tm *restrict tm) {
  tzset();
  host_gmtime(*t, tm);
  tm->tm_isdst = 0;
  tm->__tm_gmtoff = 0;
  tm->__tm_zone = "GMT";
  return tm;
}

struct tm *localtime_r(const time_t *restrict t, struct tm *restrict tm) { return __localtime_r(t, tm); }
struct tm *gmtime_r(const time_t *restrict t, struct tm *restrict tm) { return __gmtime_r(t, tm); }
struct tm *localtime(const time_t *t) { static struct tm buf; return __localtime_r(t, &buf); }
struct tm *gmtime(const time_t *t) { static struct tm buf; return __gmtime_r(t, &buf); }

/* ---- Lua extras: gas_used() returns the glue's metering_gasUsed() (a JavaScript number: f64).
 * No drive_open here: the glue's WeaveDrive imports need Asyncify, and Debian's binaryen 108 cannot
 * apply Asyncify to a memory64 module (its instrumentation uses i32 pointers: the validator rejects
 * it), so the module imports none of them. ---- */
HOST("metering_gasUsed") double host_gas_used(void);

static int l_gas_used(lua_State *L) {
  lua_pushnumber(L, host_gas_used());
  return 1;
}

void emlua_open_extra(lua_State *L) {
  lua_pushcfunction(L, l_gas_used);
  lua_setglobal(L, "gas_used");
}
