/* Force-included into every emlua64 source (emcc -include ldo64.h): Lua's error recovery without
 * setjmp.
 *
 * Debian's emscripten 3.1.6 (LLVM 14) cannot lower setjmp for wasm64: the SjLj pass calls malloc
 * with an i32 size, wasm-ld reports "function signature mismatch: malloc" and turns
 * luaD_rawrunprotected into `unreachable`. So Lua's LUAI_TRY/LUAI_THROW (ldo.c) are defined here
 * to do by hand what emscripten's SjLj lowering emits, through the two imports ao-loader's wasm64
 * glue provides for it: `invoke_vjj(fn, a1, a2)` calls the table function `fn` through the module's
 * export `dynCall_vjj` inside a JavaScript try/catch; `_emscripten_throw_longjmp()` throws the
 * JavaScript value Infinity, which that catch takes for a longjmp (it restores the stack pointer and
 * calls the export `setThrew(1)`). Lua already records the error status in its lua_longjmp before
 * it throws, so LUAI_TRY has nothing to do after the call but clear the flag.
 *
 * LUAI_TRY's only use (Lua 5.3 ldo.c, luaD_rawrunprotected) is `LUAI_TRY(L, &lj, (*f)(L, ud););`:
 * the macro calls `f(L, ud)` by name, which is exactly that statement (see abi64.c, emlua64_try).
 */
#ifndef EMLUA64_LDO_H
#define EMLUA64_LDO_H

struct lua_State;
void emlua64_try(struct lua_State *L, void (*fn)(struct lua_State *, void *), void *ud);
_Noreturn void emlua64_throw(void);

#define luai_jmpbuf int
#define LUAI_THROW(L, c) emlua64_throw()
#define LUAI_TRY(L, c, a) emlua64_try((L), f, ud)

#endif
