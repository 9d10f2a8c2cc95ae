;; A library module: exports a function but no `_start`, so it is not a WASI command.
(module
  (func (export "compute") (result i32) (i32.const 42))
)
