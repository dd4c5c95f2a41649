/* aonet Lua process entry point: the JSON ABI of docs/abi.md around a Lua 5.3 state.
 *
 * The state is created on the first call to handle() and lives in linear memory, so the memory image
 * is the whole process. The process library (the lib directory) is compiled into the module with
 * #embed and registered in package.preload; lib/main.lua returns the function that handles one
 * message. JSON is in json.c.
 */
#include <stdlib.h>
#include <string.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

/* zig's wasi-libc throws this tag for longjmp but does not define it. */
__asm__(".globl __c_longjmp\n.tagtype __c_longjmp i32\n__c_longjmp:\n");

static const char SRC_JSON[] = {
#embed "lib/json.lua"
};
static const char SRC_BINT[] = {
#embed "lib/bint.lua"
};
static const char SRC_UTILS[] = {
#embed "lib/utils.lua"
};
static const char SRC_HANDLERS[] = {
#embed "lib/handlers.lua"
};
static const char SRC_AO[] = {
#embed "lib/ao.lua"
};
static const char SRC_PROCESS[] = {
#embed "lib/process.lua"
};
static const char SRC_MAIN[] = {
#embed "lib/main.lua"
};

struct lua_module { const char *name; const char *chunkname; const char *src; size_t len; };

static const struct lua_module MODULES[] = {
  {"json", "@aonet/json.lua", SRC_JSON, sizeof SRC_JSON},
  {"bint", "@aonet/bint.lua", SRC_BINT, sizeof SRC_BINT},
  {"utils", "@aonet/utils.lua", SRC_UTILS, sizeof SRC_UTILS},
  {"handlers", "@aonet/handlers.lua", SRC_HANDLERS, sizeof SRC_HANDLERS},
  {"ao", "@aonet/ao.lua", SRC_AO, sizeof SRC_AO},
  {"process", "@aonet/process.lua", SRC_PROCESS, sizeof SRC_PROCESS},
};

int luaopen_json_core(lua_State *L);

static lua_State *L = NULL;
static int handler_ref = LUA_NOREF;   /* the Lua function(msg_json, env_json) -> result_json */
static int result_ref = LUA_NOREF;    /* keeps the last result string alive for the host */
static char *fallback = NULL;         /* a result built in C when Lua itself failed */

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud; (void)osize;
  if (nsize == 0) { free(ptr); return NULL; }
  return realloc(ptr, nsize);
}

/* A JSON error result made without Lua (used when the state is broken or out of memory). */
static const char *error_result(const char *text) {
  static const char oom[] = "{\"Error\":\"not enough memory\"}";
  size_t n = strlen(text);
  free(fallback);
  fallback = malloc(n * 6 + 16);
  if (!fallback) return oom;
  char *o = fallback;
  memcpy(o, "{\"Error\":\"", 10); o += 10;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c == '"' || c == '\\') { *o++ = '\\'; *o++ = (char)c; }
    else if (c < 0x20) { static const char hex[] = "0123456789abcdef";
      *o++ = '\\'; *o++ = 'u'; *o++ = '0'; *o++ = '0'; *o++ = hex[c >> 4]; *o++ = hex[c & 15]; }
    else *o++ = (char)c;
  }
  memcpy(o, "\"}", 3);
  return fallback;
}

static int preload_module(lua_State *S) {
  const struct lua_module *m = lua_touserdata(S, lua_upvalueindex(1));
  if (luaL_loadbufferx(S, m->src, m->len, m->chunkname, "t") != LUA_OK) return lua_error(S);
  lua_call(S, 0, 1);
  return 1;
}

/* Runs inside lua_pcall: open the standard libraries, register the process library, load main. */
static int boot(lua_State *S) {
  luaL_openlibs(S);
  luaL_getsubtable(S, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (size_t i = 0; i < sizeof MODULES / sizeof MODULES[0]; i++) {
    lua_pushlightuserdata(S, (void *)&MODULES[i]);
    lua_pushcclosure(S, preload_module, 1);
    lua_setfield(S, -2, MODULES[i].name);
  }
  lua_pushcfunction(S, luaopen_json_core);
  lua_setfield(S, -2, "json.core");
  lua_pop(S, 1);
  if (luaL_loadbufferx(S, SRC_MAIN, sizeof SRC_MAIN, "@aonet/main.lua", "t") != LUA_OK) return lua_error(S);
  lua_call(S, 0, 1);
  luaL_checktype(S, -1, LUA_TFUNCTION);
  handler_ref = luaL_ref(S, LUA_REGISTRYINDEX);
  return 0;
}

static const char *init_error = NULL;

static int ensure_state(void) {
  if (L) return init_error == NULL;
  L = lua_newstate(l_alloc, NULL);
  if (!L) { init_error = "cannot create Lua state"; return 0; }
  lua_pushcfunction(L, boot);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    const char *e = lua_tostring(L, -1);
    init_error = strdup(e ? e : "Lua boot failed");
    return 0;
  }
  return 1;
}

__attribute__((export_name("handle")))
const char *handle(const char *msg, const char *env) {
  if (!ensure_state()) return error_result(init_error ? init_error : "Lua boot failed");
  if (result_ref != LUA_NOREF) { luaL_unref(L, LUA_REGISTRYINDEX, result_ref); result_ref = LUA_NOREF; }
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, handler_ref);
  lua_pushstring(L, msg);
  lua_pushstring(L, env);
  int status = lua_pcall(L, 2, 1, 0);
  if (status != LUA_OK || !lua_isstring(L, -1)) {
    const char *e = status == LUA_ERRMEM ? "not enough memory" : lua_tostring(L, -1);
    const char *r = error_result(e ? e : "handle failed");
    lua_settop(L, 0);
    return r;
  }
  const char *out = lua_tostring(L, -1);
  result_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* the string stays alive until the next call */
  return out;
}

__attribute__((export_name("malloc")))
void *aonet_malloc(size_t n) { return malloc(n); }

__attribute__((export_name("free")))
void aonet_free(void *p) { free(p); }
