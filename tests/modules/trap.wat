;; trap.wat - every message traps (unreachable). Minimal ABI: memory, bump malloc, no-op free.
(module
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.add (global.get $top) (local.get $n)))
    (local.get $p))
  (func (export "free") (param i32))
  (func (export "handle") (param i32 i32) (result i32)
    unreachable))
