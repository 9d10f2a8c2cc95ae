;; The README's first job: `bacedge wasm run examples/hello.wasm -- arg1 arg2`.
;; Prints a greeting, then each argument on its own line (WASI preview 1, no imports
;; beyond it). Rebuild with `wat2wasm examples/hello.wat -o examples/hello.wasm`.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0 iovec, 8 bytes written, 16 argc, 20 argv buffer size, 64 argv pointers,
  ;; 1024 argument strings, 60000 constant text
  (data (i32.const 60000) "\n")
  (data (i32.const 60016) "Hello from WebAssembly on bacedge!\n")

  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $n))

  (func (export "_start") (local $i i32) (local $p i32)
    (call $write (i32.const 60016) (i32.const 35))
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 64) (i32.const 1024)))
    ;; argv[0] is the module's name: print the rest, one per line
    (local.set $i (i32.const 1))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 16))))
      (local.set $p (i32.load (i32.add (i32.const 64) (i32.mul (local.get $i) (i32.const 4)))))
      (call $write (local.get $p) (call $strlen (local.get $p)))
      (call $write (i32.const 60000) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
)
