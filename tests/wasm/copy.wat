;; Copies the file named by argv[1] to the file named by argv[2] (created), printing nothing:
;; a data task for benchmarks, whose cost is the copy, not its output.
;; Paths are absolute guest paths, opened relative to the "/" preopen (fd 3).
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  ;; 0 iovec, 8 count, 12 opened fd, 16 argc, 20 argv buf size, 64 argv[], 256 argv buf,
  ;; 4096 messages, 8192 data buffer (64 KiB)
  (data (i32.const 4096) "usage: io IN OUT\n")
  (data (i32.const 4128) "cannot open input\n")
  (data (i32.const 4160) "cannot open output\n")

  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $fail (param $ptr i32) (param $len i32)
    (call $write (i32.const 2) (local.get $ptr) (local.get $len))
    (call $proc_exit (i32.const 1)))

  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $n))

  ;; Opens argv[$i] (leading "/" stripped) under fd 3; returns the fd or -1.
  (func $open (param $i i32) (param $oflags i32) (result i32) (local $p i32) (local $n i32)
    (local.set $p (i32.load (i32.add (i32.const 64) (i32.mul (local.get $i) (i32.const 4)))))
    (local.set $n (call $strlen (local.get $p)))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 47))
      (then
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))))
    (if (result i32)
      (call $path_open (i32.const 3) (i32.const 1) (local.get $p) (local.get $n)
        (local.get $oflags) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0)
        (i32.const 12))
      (then (i32.const -1))
      (else (i32.load (i32.const 12)))))

  (func (export "_start") (local $in i32) (local $out i32) (local $n i32)
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (if (i32.lt_u (i32.load (i32.const 16)) (i32.const 3))
      (then (call $fail (i32.const 4096) (i32.const 17))))
    (drop (call $args_get (i32.const 64) (i32.const 256)))
    (local.set $in (call $open (i32.const 1) (i32.const 0)))
    (if (i32.lt_s (local.get $in) (i32.const 0))
      (then (call $fail (i32.const 4128) (i32.const 18))))
    (local.set $out (call $open (i32.const 2) (i32.const 9))) ;; CREAT | TRUNC
    (if (i32.lt_s (local.get $out) (i32.const 0))
      (then (call $fail (i32.const 4160) (i32.const 19))))
    (block $eof (loop $copy
      (i32.store (i32.const 0) (i32.const 8192))
      (i32.store (i32.const 4) (i32.const 65536))
      (br_if $eof (call $fd_read (local.get $in) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $n (i32.load (i32.const 8)))
      (br_if $eof (i32.eqz (local.get $n)))
      (call $write (local.get $out) (i32.const 8192) (local.get $n))
      (br $copy)))
    (drop (call $fd_close (local.get $in)))
    (drop (call $fd_close (local.get $out))))
)
