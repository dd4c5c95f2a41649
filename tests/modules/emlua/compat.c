/* Make Debian's emscripten 3.1.6 import only what ao-loader's `wasm32-unknown-emscripten2` glue
 * provides (that glue was generated for a newer emscripten): the old path syscalls become their
 * *at() forms, and time reads the glue's Date.now counter through `_emscripten_date_now`
 * (EMLUA_DATE_NOW: the newer glues call it `emscripten_date_now`). */
#include <time.h>

#define HOST(name) __attribute__((import_module("env"), import_name(name)))
#define AT_FDCWD (-100)
#ifndef EMLUA_DATE_NOW
#define EMLUA_DATE_NOW "_emscripten_date_now"
#endif

HOST(EMLUA_DATE_NOW) double host_date_now(void);
HOST("__syscall_openat") long host_openat(long dirfd, long path, long flags, long varargs);
HOST("__syscall_unlinkat") long host_unlinkat(long dirfd, long path, long flags);
HOST("__syscall_renameat") long host_renameat(long olddirfd, long oldpath, long newdirfd, long newpath);

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

long __syscall_open(long path, long flags, long varargs) { return host_openat(AT_FDCWD, path, flags, varargs); }
long __syscall_unlink(long path) { return host_unlinkat(AT_FDCWD, path, 0); }
long __syscall_rename(long oldpath, long newpath) { return host_renameat(AT_FDCWD, oldpath, AT_FDCWD, newpath); }
