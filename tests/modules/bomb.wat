;; bomb.wat - every message grows memory by a page until memory.grow fails (-1: the Memory-Limit),
;; then traps. The counter at address 0 is bumped first, so a test can see the rollback.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"Output\":\"ok\"}\00")
  (func (export "malloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "free") (param i32))
  (func (export "handle") (param i32 i32) (result i32)
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (block $full
      (loop $grow
        (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $grow)))
    unreachable))
