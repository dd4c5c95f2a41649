/* A minimal AO process module for the emscripten formats: Lua 5.3 + aonet's aos-compatible process
 * library (src/aonet/vm/lua/lib), behind AO's module ABI: `handle(msg_json, env_json) -> json`
 * returning {"ok": bool, "response": result}. Used to check aonet's emscripten host against
 * @permaweb/ao-loader (tests/test_emscripten.py); the sources of the Lua files are generated into
 * emlua_sources.c by build.py.
 */
#include <stdlib.h>
#include <string.h>
#include <emscripten.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

struct lua_module { const char *name; const char *chunkname; const char *src; size_t len; };
extern const struct lua_module EMLUA_MODULES[];
extern const size_t EMLUA_MODULE_COUNT;
extern const char EMLUA_ENTRY[];
extern const size_t EMLUA_ENTRY_LEN;
int luaopen_json_core(lua_State *L);
#ifdef EMLUA_OPEN_EXTRA
void EMLUA_OPEN_EXTRA(lua_State *L);   /* abi.c: extra globals for a format (e.g. drive_open) */
#endif

static lua_State *L = NULL;
static int handler_ref = LUA_NOREF;
static int result_ref = LUA_NOREF;
static const char *boot_error = NULL;

static int preload_module(lua_State *S) {
  const struct lua_module *m = lua_touserdata(S, lua_upvalueindex(1));
  if (luaL_loadbufferx(S, m->src, m->len, m->chunkname, "t") != LUA_OK) return lua_error(S);
  lua_call(S, 0, 1);
  return 1;
}

static int boot(lua_State *S) {
  luaL_openlibs(S);
  luaL_getsubtable(S, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (size_t i = 0; i < EMLUA_MODULE_COUNT; i++) {
    lua_pushlightuserdata(S, (void *)&EMLUA_MODULES[i]);
    lua_pushcclosure(S, preload_module, 1);
    lua_setfield(S, -2, EMLUA_MODULES[i].name);
  }
  lua_pushcfunction(S, luaopen_json_core);
  lua_setfield(S, -2, "json.core");
  lua_pop(S, 1);
#ifdef EMLUA_OPEN_EXTRA
  EMLUA_OPEN_EXTRA(S);
#endif
  if (luaL_loadbufferx(S, EMLUA_ENTRY, EMLUA_ENTRY_LEN, "@emlua/entry.lua", "t") != LUA_OK) return lua_error(S);
  lua_call(S, 0, 1);
  luaL_checktype(S, -1, LUA_TFUNCTION);
  handler_ref = luaL_ref(S, LUA_REGISTRYINDEX);
  return 0;
}

/* The emscripten glue runs main() once, right after instantiation: the Lua state is born there. */
int main(void) {
  L = luaL_newstate();
  if (!L) { boot_error = "cannot create Lua state"; return 1; }
  lua_pushcfunction(L, boot);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    const char *e = lua_tostring(L, -1);
    boot_error = strdup(e ? e : "Lua boot failed");
    return 1;
  }
  return 0;
}

static const char *failure(const char *text) {
  static char buf[512];
  size_t o = 0;
  const char head[] = "{\"ok\":false,\"response\":\"";
  memcpy(buf, head, sizeof head - 1); o = sizeof head - 1;
  for (const char *p = text; *p && o < sizeof buf - 8; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"' || c == '\\') { buf[o++] = '\\'; buf[o++] = (char)c; }
    else if (c >= 0x20) buf[o++] = (char)c;
  }
  memcpy(buf + o, "\"}", 3);
  return buf;
}

EMSCRIPTEN_KEEPALIVE
const char *handle(const char *msg, const char *env) {
  if (!L || boot_error) return failure(boot_error ? boot_error : "Lua state missing");
  if (result_ref != LUA_NOREF) { luaL_unref(L, LUA_REGISTRYINDEX, result_ref); result_ref = LUA_NOREF; }
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, handler_ref);
  lua_pushstring(L, msg);
  lua_pushstring(L, env);
  int status = lua_pcall(L, 2, 1, 0);
  if (status != LUA_OK || !lua_isstring(L, -1)) {
    const char *r = failure(status == LUA_ERRMEM ? "not enough memory" : (lua_tostring(L, -1) ? lua_tostring(L, -1) : "handle failed"));
    lua_settop(L, 0);
    return r;
  }
  const char *out = lua_tostring(L, -1);
  result_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return out;
}
