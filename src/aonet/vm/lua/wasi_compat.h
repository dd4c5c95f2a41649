/* Force-included into every Lua source: stand-ins for the C library parts WASI lacks.
 * A process has no shell, no temporary files and no clock of its own; these calls fail cleanly. */
#ifndef AONET_WASI_COMPAT_H
#define AONET_WASI_COMPAT_H
#include <stdio.h>
#include <stdlib.h>

static inline int aonet_no_system(const char *cmd) { (void)cmd; return 0; }
#define system(cmd) aonet_no_system(cmd)
#define tmpfile() ((FILE *)NULL)
#define LUA_TMPNAMBUFSIZE 32
#define lua_tmpnam(b, e) { (b)[0] = '\0'; e = 1; }
#endif
