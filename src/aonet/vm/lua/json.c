/* json.core: JSON encode/decode for Lua in C (every message passes through both, so speed matters).
 *
 * Encoding is deterministic: object keys sorted byte-wise, integers as integers, floats with the
 * fewest of 15-17 significant digits that read back exactly (integral floats below 2^53 as
 * integers), invalid UTF-8 bytes escaped as \u00XX.
 * A table's metatable may declare __jsontype = "array" | "object" | "null", or __tojson(v) -> text.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lua.h"
#include "lauxlib.h"

#define MAX_DEPTH 200

/* ---- output buffer: a userdata so that an error (longjmp) never leaks it ---- */
typedef struct { char *data; size_t len, cap; } outbuf;

static int outbuf_gc(lua_State *L) {
  outbuf *b = lua_touserdata(L, 1);
  free(b->data);
  b->data = NULL;
  return 0;
}

static void put(lua_State *L, outbuf *b, const char *s, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) luaL_error(L, "not enough memory");
    b->data = d; b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
}
#define PUTS(L, b, lit) put(L, b, lit, sizeof(lit) - 1)

static size_t utf8_len(const unsigned char *s, size_t n) {
  /* length of a valid UTF-8 sequence at s, or 0 */
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t k; unsigned min;
  if (c >= 0xC2 && c <= 0xDF) { k = 2; min = 0x80; }
  else if (c >= 0xE0 && c <= 0xEF) { k = 3; min = 0x800; }
  else if (c >= 0xF0 && c <= 0xF4) { k = 4; min = 0x10000; }
  else return 0;
  if (n < k) return 0;
  unsigned cp = c & (0x3F >> (k - 1));
  for (size_t i = 1; i < k; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return k;
}

static void put_string(lua_State *L, outbuf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  PUTS(L, b, "\"");
  size_t start = 0, i = 0;
  while (i < n) {
    unsigned char c = u[i];
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') { i++; continue; }
    size_t k = c >= 0x80 ? utf8_len(u + i, n - i) : 0;
    if (k) { i += k; continue; }
    put(L, b, s + start, i - start);
    char esc[6];
    switch (c) {
      case '"': PUTS(L, b, "\\\""); break;
      case '\\': PUTS(L, b, "\\\\"); break;
      case '\n': PUTS(L, b, "\\n"); break;
      case '\r': PUTS(L, b, "\\r"); break;
      case '\t': PUTS(L, b, "\\t"); break;
      case '\b': PUTS(L, b, "\\b"); break;
      case '\f': PUTS(L, b, "\\f"); break;
      default:
        esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0'; esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
        put(L, b, esc, 6);
    }
    i++;
    start = i;
  }
  put(L, b, s + start, n - start);
  PUTS(L, b, "\"");
}

/* writes a number's JSON text into buf (at least 48 bytes); returns its length */
static size_t format_number(lua_State *L, int idx, char *buf) {
  if (lua_isinteger(L, idx)) return (size_t)snprintf(buf, 48, LUA_INTEGER_FMT, lua_tointeger(L, idx));
  lua_Number d = lua_tonumber(L, idx);
  if (isnan(d) || isinf(d)) luaL_error(L, "json: cannot encode %s", isnan(d) ? "NaN" : "infinity");
  if (d == floor(d) && fabs(d) < 9007199254740992.0) return (size_t)snprintf(buf, 48, "%.0f", d);
  /* the shortest of 15..17 significant digits that reads back as the same double */
  for (int prec = 15; prec < 17; prec++) {
    int n = snprintf(buf, 48, "%.*g", prec, d);
    if (strtod(buf, NULL) == d) return (size_t)n;
  }
  return (size_t)snprintf(buf, 48, "%.17g", d);
}

typedef struct { const char *s; size_t len; int validx, is_num; char num[32]; } objkey;

static int key_cmp(const void *a, const void *b) {
  const objkey *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->is_num ? x->num : x->s, y->is_num ? y->num : y->s, n);
  if (c) return c;
  return x->len < y->len ? -1 : (x->len > y->len);
}

static void encode(lua_State *L, outbuf *b, int idx, int depth);

#define SMALL_OBJECT 12

static void encode_table(lua_State *L, outbuf *b, int idx, int depth) {
  const char *kind = NULL;
  if (lua_getmetatable(L, idx)) {
    if (lua_getfield(L, -1, "__tojson") == LUA_TFUNCTION) {
      lua_pushvalue(L, idx);
      lua_call(L, 1, 1);
      size_t n; const char *s = lua_tolstring(L, -1, &n);
      if (!s) luaL_error(L, "json: __tojson must return a string");
      put(L, b, s, n);
      lua_pop(L, 2);
      return;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "__jsontype") == LUA_TSTRING) kind = lua_tostring(L, -1);
    lua_pop(L, 2);  /* kind stays valid: the string is held by the metatable, held by the table */
  }
  if (kind && strcmp(kind, "null") == 0) { PUTS(L, b, "null"); return; }
  lua_Unsigned n = lua_rawlen(L, idx);
  size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { count++; lua_pop(L, 1); }
  int is_array = kind ? strcmp(kind, "array") == 0 : (count == n);
  if (is_array) {
    PUTS(L, b, "[");
    for (lua_Unsigned i = 1; i <= n; i++) {
      if (i > 1) PUTS(L, b, ",");
      lua_rawgeti(L, idx, (lua_Integer)i);
      encode(L, b, lua_gettop(L), depth + 1);
      lua_pop(L, 1);
    }
    PUTS(L, b, "]");
    return;
  }
  int base = lua_gettop(L);
  objkey small[SMALL_OBJECT];
  objkey *keys = count <= SMALL_OBJECT ? small : lua_newuserdata(L, count * sizeof(objkey));
  if (count > (size_t)INT_MAX / 2 - 8 || !lua_checkstack(L, (int)(2 * count + 8)))
    luaL_error(L, "json: object too large");
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {          /* leaves key, value pairs on the stack for the ones kept */
    if (lua_type(L, -1) == LUA_TFUNCTION) { lua_pop(L, 1); continue; }  /* methods are not data */
    int kt = lua_type(L, -2);
    objkey *e = &keys[k++];
    e->validx = lua_gettop(L);
    if (kt == LUA_TSTRING) {
      e->s = lua_tolstring(L, -2, &e->len);
      e->is_num = 0;
    } else if (kt == LUA_TNUMBER) {
      char tmp[48];
      size_t len = format_number(L, -2, tmp);
      if (len >= sizeof e->num) luaL_error(L, "json: number key too long");
      memcpy(e->num, tmp, len + 1);
      e->len = len;
      e->is_num = 1;
    } else {
      luaL_error(L, "json: cannot encode an object key of type %s", lua_typename(L, kt));
    }
    lua_pushvalue(L, -2);             /* the key again, for lua_next */
  }
  if (k) qsort(keys, k, sizeof(objkey), key_cmp);
  PUTS(L, b, "{");
  for (size_t i = 0; i < k; i++) {
    if (i) PUTS(L, b, ",");
    put_string(L, b, keys[i].is_num ? keys[i].num : keys[i].s, keys[i].len);
    PUTS(L, b, ":");
    encode(L, b, keys[i].validx, depth + 1);
  }
  PUTS(L, b, "}");
  lua_settop(L, base);
}

static void encode(lua_State *L, outbuf *b, int idx, int depth) {
  if (depth > MAX_DEPTH) luaL_error(L, "json: nested too deep (or a table contains itself)");
  luaL_checkstack(L, 8, "json: nested too deep");
  switch (lua_type(L, idx)) {
    case LUA_TNIL: PUTS(L, b, "null"); break;
    case LUA_TBOOLEAN: if (lua_toboolean(L, idx)) PUTS(L, b, "true"); else PUTS(L, b, "false"); break;
    case LUA_TNUMBER: { char num[48]; size_t n = format_number(L, idx, num); put(L, b, num, n); break; }
    case LUA_TSTRING: { size_t n; const char *s = lua_tolstring(L, idx, &n); put_string(L, b, s, n); break; }
    case LUA_TTABLE: encode_table(L, b, idx, depth); break;
    case LUA_TFUNCTION: PUTS(L, b, "null"); break;
    default: luaL_error(L, "json: cannot encode a %s", luaL_typename(L, idx));
  }
}

static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  outbuf *b = lua_newuserdata(L, sizeof(outbuf));
  b->data = NULL; b->len = b->cap = 0;
  if (luaL_newmetatable(L, "aonet.json.buffer")) {
    lua_pushcfunction(L, outbuf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  encode(L, b, 1, 0);
  lua_pushlstring(L, b->data ? b->data : "", b->len);
  free(b->data);
  b->data = NULL;
  return 1;
}

/* ---- decoding ---- */
typedef struct { const char *start, *p, *end; lua_State *L; } reader;

static void fail(reader *r, const char *what) {
  size_t line = 1, col = 1;
  for (const char *q = r->start; q < r->p; q++) { if (*q == '\n') { line++; col = 1; } else col++; }
  luaL_error(r->L, "json: %s at line %d column %d", what, (int)line, (int)col);
}

static void skip_ws(reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) r->p++;
}

static void put_utf8(luaL_Buffer *B, unsigned cp) {
  char s[4]; int n;
  if (cp < 0x80) { s[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { s[0] = (char)(0xC0 | (cp >> 6)); s[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) { s[0] = (char)(0xE0 | (cp >> 12)); s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    s[2] = (char)(0x80 | (cp & 0x3F)); n = 3; }
  else { s[0] = (char)(0xF0 | (cp >> 18)); s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    s[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); s[3] = (char)(0x80 | (cp & 0x3F)); n = 4; }
  luaL_addlstring(B, s, (size_t)n);
}

static int hex4(reader *r, const char *q, unsigned *out) {
  if (r->end - q < 4) return 0;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = q[i]; v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static void decode_string(reader *r) {
  const char *s = ++r->p;  /* after the quote */
  while (r->p < r->end && *r->p != '"' && *r->p != '\\' && (unsigned char)*r->p >= 0x20) r->p++;
  if (r->p < r->end && *r->p == '"') { lua_pushlstring(r->L, s, (size_t)(r->p - s)); r->p++; return; }
  luaL_Buffer B;
  luaL_buffinit(r->L, &B);
  luaL_addlstring(&B, s, (size_t)(r->p - s));
  for (;;) {
    if (r->p >= r->end) fail(r, "unterminated string");
    unsigned char c = (unsigned char)*r->p;
    if (c == '"') { r->p++; break; }
    if (c < 0x20) fail(r, "control character in string");
    if (c != '\\') { luaL_addchar(&B, (char)c); r->p++; continue; }
    if (r->p + 1 >= r->end) fail(r, "unterminated string");
    char e = r->p[1];
    r->p += 2;
    switch (e) {
      case '"': luaL_addchar(&B, '"'); break;
      case '\\': luaL_addchar(&B, '\\'); break;
      case '/': luaL_addchar(&B, '/'); break;
      case 'b': luaL_addchar(&B, '\b'); break;
      case 'f': luaL_addchar(&B, '\f'); break;
      case 'n': luaL_addchar(&B, '\n'); break;
      case 'r': luaL_addchar(&B, '\r'); break;
      case 't': luaL_addchar(&B, '\t'); break;
      case 'u': {
        unsigned cp, lo;
        if (!hex4(r, r->p, &cp)) fail(r, "bad unicode escape");
        r->p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u'
            && hex4(r, r->p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          r->p += 6;
        }
        put_utf8(&B, cp);
        break;
      }
      default: r->p -= 2; fail(r, "bad escape");
    }
  }
  luaL_pushresult(&B);
}

static void decode_number(reader *r) {
  const char *s = r->p;
  const char *q = s;
  if (q < r->end && *q == '-') q++;
  if (q >= r->end || *q < '0' || *q > '9') fail(r, "unexpected character");
  while (q < r->end && *q >= '0' && *q <= '9') q++;
  int is_float = 0;
  if (q < r->end && *q == '.') {
    is_float = 1; q++;
    if (q >= r->end || *q < '0' || *q > '9') { r->p = q; fail(r, "bad number"); }
    while (q < r->end && *q >= '0' && *q <= '9') q++;
  }
  if (q < r->end && (*q == 'e' || *q == 'E')) {
    is_float = 1; q++;
    if (q < r->end && (*q == '+' || *q == '-')) q++;
    if (q >= r->end || *q < '0' || *q > '9') { r->p = q; fail(r, "bad number"); }
    while (q < r->end && *q >= '0' && *q <= '9') q++;
  }
  if (!is_float) {
    /* an integer when it fits in 64 bits, else a float */
    const char *d = s[0] == '-' ? s + 1 : s;
    unsigned long long v = 0; int overflow = 0;
    for (; d < q; d++) {
      unsigned digit = (unsigned)(*d - '0');
      if (v > (ULLONG_MAX - digit) / 10) { overflow = 1; break; }
      v = v * 10 + digit;
    }
    if (!overflow) {
      if (s[0] == '-' && v <= (unsigned long long)LLONG_MAX + 1ULL) {
        lua_pushinteger(r->L, (lua_Integer)(0ULL - v)); r->p = q; return;
      }
      if (s[0] != '-' && v <= (unsigned long long)LLONG_MAX) {
        lua_pushinteger(r->L, (lua_Integer)v); r->p = q; return;
      }
    }
  }
  char tmp[64];
  size_t n = (size_t)(q - s);
  if (n >= sizeof tmp) {
    lua_pushlstring(r->L, s, n);
    lua_pushnumber(r->L, strtod(lua_tostring(r->L, -1), NULL));
    lua_remove(r->L, -2);
  } else {
    memcpy(tmp, s, n); tmp[n] = '\0';
    lua_pushnumber(r->L, strtod(tmp, NULL));
  }
  r->p = q;
}

static void decode_value(reader *r, int depth);

static void expect_word(reader *r, const char *w, size_t n) {
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0) fail(r, "unexpected character");
  r->p += n;
}

static void decode_value(reader *r, int depth) {
  lua_State *L = r->L;
  if (depth > MAX_DEPTH) fail(r, "nested too deep");
  luaL_checkstack(L, 6, "json: nested too deep");
  skip_ws(r);
  if (r->p >= r->end) fail(r, "unexpected end of input");
  switch (*r->p) {
    case '"': decode_string(r); return;
    case '{': {
      r->p++;
      lua_newtable(L);
      skip_ws(r);
      if (r->p < r->end && *r->p == '}') { r->p++; return; }
      for (;;) {
        skip_ws(r);
        if (r->p >= r->end || *r->p != '"') fail(r, "expected a string key");
        decode_string(r);
        skip_ws(r);
        if (r->p >= r->end || *r->p != ':') fail(r, "expected ':'");
        r->p++;
        decode_value(r, depth + 1);
        lua_rawset(L, -3);
        skip_ws(r);
        if (r->p < r->end && *r->p == '}') { r->p++; return; }
        if (r->p >= r->end || *r->p != ',') fail(r, "expected ',' or '}'");
        r->p++;
      }
    }
    case '[': {
      r->p++;
      lua_newtable(L);
      skip_ws(r);
      if (r->p < r->end && *r->p == ']') { r->p++; return; }
      for (lua_Integer i = 1;; i++) {
        decode_value(r, depth + 1);
        lua_rawseti(L, -2, i);
        skip_ws(r);
        if (r->p < r->end && *r->p == ']') { r->p++; return; }
        if (r->p >= r->end || *r->p != ',') fail(r, "expected ',' or ']'");
        r->p++;
      }
    }
    case 't': expect_word(r, "true", 4); lua_pushboolean(L, 1); return;
    case 'f': expect_word(r, "false", 5); lua_pushboolean(L, 0); return;
    case 'n': expect_word(r, "null", 4); lua_pushnil(L); return;
    default: decode_number(r); return;
  }
}

static int l_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  reader r = {s, s, s + n, L};
  decode_value(&r, 0);
  skip_ws(&r);
  if (r.p != r.end) fail(&r, "trailing characters");
  return 1;
}

int luaopen_json_core(lua_State *L) {
  static const luaL_Reg funcs[] = {{"encode", l_encode}, {"decode", l_decode}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
