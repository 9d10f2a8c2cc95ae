;; Imports a host function no WASI runtime provides, so it cannot be instantiated.
(module
  (import "env" "host_thing" (func $host_thing (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $host_thing (i32.const 1)))
)
