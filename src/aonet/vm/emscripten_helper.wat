;; Host helpers that run once per basic block or per setjmp: they must stay inside wasm.
;; metering.usegas(n) adds n to the message's gas and calls the host only when the limit is passed
;; (AO's loader: used += n; throw "out of gas!" when used > limit). get/setTempRet0 hold the high
;; half of i64 results for emscripten's legalized calls.
(module
  (import "aonet" "out_of_gas" (func $out_of_gas))
  (global $used (export "gas_used") (mut i64) (i64.const 0))
  (global $limit (export "gas_limit") (mut i64) (i64.const 0))
  (global $temp (mut i32) (i32.const 0))
  (func (export "usegas") (param $n i32)
    (global.set $used (i64.add (global.get $used) (i64.extend_i32_s (local.get $n))))
    (if (i64.gt_s (global.get $used) (global.get $limit))
      (then (call $out_of_gas))))
  (func (export "usegas64") (param $n i64)
    (global.set $used (i64.add (global.get $used) (local.get $n)))
    (if (i64.gt_s (global.get $used) (global.get $limit))
      (then (call $out_of_gas))))
  (func (export "getTempRet0") (result i32) (global.get $temp))
  (func (export "setTempRet0") (param $v i32) (global.set $temp (local.get $v))))
