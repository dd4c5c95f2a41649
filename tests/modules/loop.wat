;; loop.wat - every message loops forever: only the Compute-Limit (fuel) stops it.
(module
  (memory (export "memory") 1)
  (func (export "malloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "free") (param i32))
  (func (export "handle") (param i32 i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
