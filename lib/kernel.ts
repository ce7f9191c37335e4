import wabt from "wabt";

/**
 * The kernel's loop over the neighbour lists of history[h..hEnd) (locals $h $hEnd $ranges $score $m $p $end $j $c):
 * for each pair (j, sim) at $p of each list, in order, `body` with $j and $c, the address of score[j].
 */
const overLists = (body: string) => `(block $done (loop $movie
      (br_if $done (i32.ge_u (local.get $h) (local.get $hEnd)))
      (local.set $m (i32.add (local.get $ranges) (i32.shl (i32.load (local.get $h)) (i32.const 3))))
      (local.set $p (i32.load (local.get $m)))
      (local.set $end (i32.load offset=4 (local.get $m)))
      (block $listDone (loop $list
        (br_if $listDone (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $j (i32.load (local.get $p)))
        (local.set $c (i32.add (local.get $score) (i32.shl (local.get $j) (i32.const 3))))${body}
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $list)))
      (local.set $h (i32.add (local.get $h) (i32.const 4)))
      (br $movie)))`;

/**
 * The hot loops of the neighbours (and of the evaluation's scores) in WebAssembly, over one shared memory
 * that every thread instantiates.
 * Addresses are byte offsets into that memory. A movie x's likes are entries p, each a segment
 * (start, end) of its user's row in uIdx: the more popular movies y < x that user also likes, 16-bit,
 * counted from the base of their band of 65536 movies.
 */
const WAT = `(module
  (memory (import "env" "memory") 1 65536 shared)

  ;; counts[base + y] += 1 for every y (16-bit) in the segments of entries [p, pEnd)
  (func (export "countAll") (param $p i32) (param $pEnd i32) (param $counts i32) (param $base i32)
    (local $q i32) (local $end i32) (local $c i32)
    (local.set $counts (i32.add (local.get $counts) (i32.shl (local.get $base) (i32.const 2))))
    (block $done (loop $entry
      (br_if $done (i32.ge_u (local.get $p) (local.get $pEnd)))
      (local.set $q (i32.load (local.get $p)))
      (local.set $end (i32.load offset=4 (local.get $p)))
      (block $rowDone (loop $row
        (br_if $rowDone (i32.ge_u (local.get $q) (local.get $end)))
        (local.set $c (i32.add (local.get $counts) (i32.shl (i32.load16_u (local.get $q)) (i32.const 2))))
        (i32.store (local.get $c) (i32.add (i32.load (local.get $c)) (i32.const 1)))
        (local.set $q (i32.add (local.get $q) (i32.const 2)))
        (br $row)))
      (local.set $p (i32.add (local.get $p) (i32.const 8)))
      (br $entry))))

  ;; counts[y] += how many of the bitsets listed at [list, listEnd) (their addresses; bit y of i64 word y / 64) hold y,
  ;; for y in [0, n); counts padded to a multiple of 64. Per 64 movies, up to 255 users go through four i8x16 counters.
  (func (export "countBits") (param $list i32) (param $listEnd i32) (param $counts i32) (param $n i32)
    (local $chunkEnd i32) (local $o i32) (local $end i32) (local $lim i32) (local $l i32) (local $mask i64) (local $v v128)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128) (local $bit v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    ;; byte i of a lane group's 16 spread over 8 lanes each, and each lane's bit
    (local.set $s0 (v128.const i8x16 0 0 0 0 0 0 0 0 1 1 1 1 1 1 1 1))
    (local.set $s1 (v128.const i8x16 2 2 2 2 2 2 2 2 3 3 3 3 3 3 3 3))
    (local.set $s2 (v128.const i8x16 4 4 4 4 4 4 4 4 5 5 5 5 5 5 5 5))
    (local.set $s3 (v128.const i8x16 6 6 6 6 6 6 6 6 7 7 7 7 7 7 7 7))
    (local.set $bit (v128.const i8x16 1 2 4 8 16 32 64 -128 1 2 4 8 16 32 64 -128))
    ;; o: the byte offset of the current 64 movies' word
    (local.set $end (i32.shl (i32.shr_u (i32.add (local.get $n) (i32.const 63)) (i32.const 6)) (i32.const 3)))
    (block $done (loop $chunk
      (br_if $done (i32.ge_u (local.get $list) (local.get $listEnd)))
      (local.set $chunkEnd (select (local.get $listEnd) (i32.add (local.get $list) (i32.const 1020))
        (i32.lt_u (i32.sub (local.get $listEnd) (local.get $list)) (i32.const 1020))))
      (local.set $o (i32.const 0))
      (block $blocksDone (loop $block
        (br_if $blocksDone (i32.ge_u (local.get $o) (local.get $end)))
        ;; movies from n on are not counted
        (local.set $lim (i32.sub (local.get $n) (i32.shl (local.get $o) (i32.const 3))))
        (local.set $mask (select (i64.const -1) (i64.sub (i64.shl (i64.const 1) (i64.extend_i32_u (local.get $lim))) (i64.const 1))
          (i32.ge_u (local.get $lim) (i32.const 64))))
        (local.set $c0 (v128.const i32x4 0 0 0 0))
        (local.set $c1 (v128.const i32x4 0 0 0 0))
        (local.set $c2 (v128.const i32x4 0 0 0 0))
        (local.set $c3 (v128.const i32x4 0 0 0 0))
        (local.set $l (local.get $list))
        (block $usersDone (loop $user
          (br_if $usersDone (i32.ge_u (local.get $l) (local.get $chunkEnd)))
          (local.set $v (i64x2.splat (i64.and (i64.load (i32.add (i32.load (local.get $l)) (local.get $o))) (local.get $mask))))
          ;; a set bit's lane is -1: subtracting it counts one
          (local.set $c0 (i8x16.sub (local.get $c0) (i8x16.eq (v128.and (i8x16.swizzle (local.get $v) (local.get $s0)) (local.get $bit)) (local.get $bit))))
          (local.set $c1 (i8x16.sub (local.get $c1) (i8x16.eq (v128.and (i8x16.swizzle (local.get $v) (local.get $s1)) (local.get $bit)) (local.get $bit))))
          (local.set $c2 (i8x16.sub (local.get $c2) (i8x16.eq (v128.and (i8x16.swizzle (local.get $v) (local.get $s2)) (local.get $bit)) (local.get $bit))))
          (local.set $c3 (i8x16.sub (local.get $c3) (i8x16.eq (v128.and (i8x16.swizzle (local.get $v) (local.get $s3)) (local.get $bit)) (local.get $bit))))
          (local.set $l (i32.add (local.get $l) (i32.const 4)))
          (br $user)))
        (call $add16 (i32.add (local.get $counts) (i32.shl (local.get $o) (i32.const 5))) (local.get $c0))
        (call $add16 (i32.add (local.get $counts) (i32.add (i32.shl (local.get $o) (i32.const 5)) (i32.const 64))) (local.get $c1))
        (call $add16 (i32.add (local.get $counts) (i32.add (i32.shl (local.get $o) (i32.const 5)) (i32.const 128))) (local.get $c2))
        (call $add16 (i32.add (local.get $counts) (i32.add (i32.shl (local.get $o) (i32.const 5)) (i32.const 192))) (local.get $c3))
        (local.set $o (i32.add (local.get $o) (i32.const 8)))
        (br $block)))
      (local.set $list (local.get $chunkEnd))
      (br $chunk))))

  ;; the 16 counts at (i32) += the 16 unsigned bytes of c
  (func $add16 (param $at i32) (param $c v128)
    (local $h v128)
    (local.set $h (i16x8.extend_low_i8x16_u (local.get $c)))
    (v128.store (local.get $at) (i32x4.add (v128.load (local.get $at)) (i32x4.extend_low_i16x8_u (local.get $h))))
    (v128.store offset=16 (local.get $at) (i32x4.add (v128.load offset=16 (local.get $at)) (i32x4.extend_high_i16x8_u (local.get $h))))
    (local.set $h (i16x8.extend_high_i8x16_u (local.get $c)))
    (v128.store offset=32 (local.get $at) (i32x4.add (v128.load offset=32 (local.get $at)) (i32x4.extend_low_i16x8_u (local.get $h))))
    (v128.store offset=48 (local.get $at) (i32x4.add (v128.load offset=48 (local.get $at)) (i32x4.extend_high_i16x8_u (local.get $h)))))

  ;; countAll, also listing each base + y in touched on its first count; returns how many
  (func (export "countList") (param $p i32) (param $pEnd i32) (param $counts i32) (param $touched i32) (param $base i32) (result i32)
    (local $q i32) (local $end i32) (local $c i32) (local $y i32) (local $v i32) (local $n i32)
    (block $done (loop $entry
      (br_if $done (i32.ge_u (local.get $p) (local.get $pEnd)))
      (local.set $q (i32.load (local.get $p)))
      (local.set $end (i32.load offset=4 (local.get $p)))
      (block $rowDone (loop $row
        (br_if $rowDone (i32.ge_u (local.get $q) (local.get $end)))
        (local.set $y (i32.add (local.get $base) (i32.load16_u (local.get $q))))
        (local.set $c (i32.add (local.get $counts) (i32.shl (local.get $y) (i32.const 2))))
        (local.set $v (i32.load (local.get $c)))
        (i32.store (local.get $c) (i32.add (local.get $v) (i32.const 1)))
        (i32.store (i32.add (local.get $touched) (i32.shl (local.get $n) (i32.const 2))) (local.get $y))
        (local.set $n (i32.add (local.get $n) (i32.eqz (local.get $v))))
        (local.set $q (i32.add (local.get $q) (i32.const 2)))
        (br $row)))
      (local.set $p (i32.add (local.get $p) (i32.const 8)))
      (br $entry)))
    (local.get $n))

  ;; countList with f64 sums: each user (users[], parallel to the entries) adds invD[user]
  (func (export "sumList") (param $p i32) (param $pEnd i32) (param $users i32) (param $invD i32) (param $sums i32) (param $touched i32) (param $base i32) (result i32)
    (local $q i32) (local $end i32) (local $c i32) (local $y i32) (local $v f64) (local $w f64) (local $n i32)
    (block $done (loop $entry
      (br_if $done (i32.ge_u (local.get $p) (local.get $pEnd)))
      (local.set $q (i32.load (local.get $p)))
      (local.set $end (i32.load offset=4 (local.get $p)))
      (local.set $w (f64.load (i32.add (local.get $invD) (i32.shl (i32.load (local.get $users)) (i32.const 3)))))
      (block $rowDone (loop $row
        (br_if $rowDone (i32.ge_u (local.get $q) (local.get $end)))
        (local.set $y (i32.add (local.get $base) (i32.load16_u (local.get $q))))
        (local.set $c (i32.add (local.get $sums) (i32.shl (local.get $y) (i32.const 3))))
        (local.set $v (f64.load (local.get $c)))
        (f64.store (local.get $c) (f64.add (local.get $v) (local.get $w)))
        (i32.store (i32.add (local.get $touched) (i32.shl (local.get $n) (i32.const 2))) (local.get $y))
        (local.set $n (i32.add (local.get $n) (f64.eq (local.get $v) (f64.const 0))))
        (local.set $q (i32.add (local.get $q) (i32.const 2)))
        (br $row)))
      (local.set $p (i32.add (local.get $p) (i32.const 8)))
      (local.set $users (i32.add (local.get $users) (i32.const 4)))
      (br $entry)))
    (local.get $n))

  ;; Lists pair y with its flags at out, its count or sum v at the same index of passV; returns the next out.
  (func $emit (param $out i32) (param $pass i32) (param $passV i32) (param $y i32) (param $flags i32) (param $v f64) (result i32)
    (if (result i32) (local.get $flags)
      (then
        (i32.store (local.get $out) (i32.or (i32.shl (local.get $y) (i32.const 2)) (local.get $flags)))
        (f64.store (i32.add (local.get $passV) (i32.shl (i32.sub (local.get $out) (local.get $pass)) (i32.const 1))) (local.get $v))
        (i32.add (local.get $out) (i32.const 4)))
      (else (local.get $out))))

  ;; Cosine's candidates y in [0, n): with e = counts[y] * axR * b[y] (an upper bound of the weight,
  ;; raised by axR's margin), lists y * 4 + 1 if e >= thr[y] (offer x to y), + 2 if e >= bar (offer y to x),
  ;; with the count in passV (f64); zeroes the counts it reads. Four at a time: thr and bar must be > 0,
  ;; so that zero counts never pass; counts are < 2^31, so converting them as signed is exact (and cheaper).
  ;; counts, b and thr are padded to a multiple of 4. Returns how many pairs it listed.
  (func (export "scanAll") (param $n i32) (param $counts i32) (param $b i32) (param $thr i32) (param $axR f32) (param $bar f32) (param $pass i32) (param $passV i32) (result i32)
    (local $o i32) (local $end i32) (local $at i32) (local $v v128) (local $e v128) (local $toY v128) (local $toX v128)
    (local $y i32) (local $ys i32) (local $xs i32) (local $lanes i32) (local $lane i32) (local $out i32) (local $axs v128) (local $bars v128)
    (local.set $axs (f32x4.splat (local.get $axR)))
    (local.set $bars (f32x4.splat (local.get $bar)))
    (local.set $out (local.get $pass))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    ;; o: the byte offset of y in counts, b and thr
    (block $done (loop $quad
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (local.set $at (i32.add (local.get $counts) (local.get $o)))
      (local.set $v (v128.load (local.get $at)))
      (local.set $e (f32x4.mul (f32x4.mul (f32x4.convert_i32x4_s (local.get $v)) (local.get $axs))
        (v128.load (i32.add (local.get $b) (local.get $o)))))
      (local.set $toY (f32x4.ge (local.get $e) (v128.load (i32.add (local.get $thr) (local.get $o)))))
      (local.set $toX (f32x4.ge (local.get $e) (local.get $bars)))
      (if (v128.any_true (v128.or (local.get $toY) (local.get $toX))) (then
        ;; the lanes that pass, lowest first
        (local.set $ys (i32x4.bitmask (local.get $toY)))
        (local.set $xs (i32x4.bitmask (local.get $toX)))
        (local.set $lanes (i32.or (local.get $ys) (local.get $xs)))
        (local.set $y (i32.shr_u (local.get $o) (i32.const 2)))
        (block $listed (loop $next
          (br_if $listed (i32.eqz (local.get $lanes)))
          (local.set $lane (i32.ctz (local.get $lanes)))
          (local.set $out (call $emit (local.get $out) (local.get $pass) (local.get $passV) (i32.add (local.get $y) (local.get $lane))
            (i32.or (i32.and (i32.shr_u (local.get $ys) (local.get $lane)) (i32.const 1))
              (i32.shl (i32.and (i32.shr_u (local.get $xs) (local.get $lane)) (i32.const 1)) (i32.const 1)))
            (f64.convert_i32_s (i32.load (i32.add (local.get $at) (i32.shl (local.get $lane) (i32.const 2)))))))
          (local.set $lanes (i32.and (local.get $lanes) (i32.sub (local.get $lanes) (i32.const 1))))
          (br $next)))))
      (v128.store (local.get $at) (v128.const i32x4 0 0 0 0))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $quad)))
    (i32.shr_u (i32.sub (local.get $out) (local.get $pass)) (i32.const 2)))

  ;; scanAll for the candidates listed in touched[0..n), one at a time
  (func (export "scanList") (param $n i32) (param $touched i32) (param $counts i32) (param $b i32) (param $thr i32) (param $axR f32) (param $bar f32) (param $pass i32) (param $passV i32) (result i32)
    (local $i i32) (local $y i32) (local $at i32) (local $v i32) (local $e f32) (local $out i32)
    (local.set $out (local.get $pass))
    (block $done (loop $candidate
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $y (i32.load (i32.add (local.get $touched) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $at (i32.add (local.get $counts) (i32.shl (local.get $y) (i32.const 2))))
      (local.set $v (i32.load (local.get $at)))
      (i32.store (local.get $at) (i32.const 0))
      (local.set $e (f32.mul (f32.mul (f32.convert_i32_s (local.get $v))
        (local.get $axR)) (f32.load (i32.add (local.get $b) (i32.shl (local.get $y) (i32.const 2))))))
      (local.set $out (call $emit (local.get $out) (local.get $pass) (local.get $passV) (local.get $y)
        (i32.or (f32.ge (local.get $e) (f32.load (i32.add (local.get $thr) (i32.shl (local.get $y) (i32.const 2)))))
          (i32.shl (f32.ge (local.get $e) (local.get $bar)) (i32.const 1)))
        (f64.convert_i32_s (local.get $v))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $candidate)))
    (i32.shr_u (i32.sub (local.get $out) (local.get $pass)) (i32.const 2)))

  ;; scanList for rp3beta's sums, whose weight is not symmetric: x to y is tested with sums[y] * a[y] * bxR,
  ;; y to x with sums[y] * axR * b[y] (a and b f64)
  (func (export "scanListSums") (param $n i32) (param $touched i32) (param $sums i32) (param $a i32) (param $b i32) (param $thr i32) (param $axR f64) (param $bxR f64) (param $bar f64) (param $pass i32) (param $passV i32) (result i32)
    (local $i i32) (local $y i32) (local $at i32) (local $v f64) (local $out i32)
    (local.set $out (local.get $pass))
    (block $done (loop $candidate
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $y (i32.load (i32.add (local.get $touched) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $at (i32.add (local.get $sums) (i32.shl (local.get $y) (i32.const 3))))
      (local.set $v (f64.load (local.get $at)))
      (f64.store (local.get $at) (f64.const 0))
      (local.set $out (call $emit (local.get $out) (local.get $pass) (local.get $passV) (local.get $y)
        (i32.or
          (f64.ge (f64.mul (f64.mul (local.get $v) (f64.load (i32.add (local.get $a) (i32.shl (local.get $y) (i32.const 3))))) (local.get $bxR))
            (f64.promote_f32 (f32.load (i32.add (local.get $thr) (i32.shl (local.get $y) (i32.const 2))))))
          (i32.shl (f64.ge (f64.mul (f64.mul (local.get $v) (local.get $axR)) (f64.load (i32.add (local.get $b) (i32.shl (local.get $y) (i32.const 3)))))
            (local.get $bar)) (i32.const 1)))
        (local.get $v)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $candidate)))
    (i32.shr_u (i32.sub (local.get $out) (local.get $pass)) (i32.const 2)))
  ;; ---- The evaluation's ranking (lib/evaluate.ts): spec step 10 for one user at a time ----

  ;; score[j] += sim (float32 to float64) for each movie m of history[h..hEnd) and each pair (j i32, sim f32) of m's
  ;; list, at byte addresses ranges[2m]..ranges[2m+1], in that order, listing j in touched when first scored (sims are
  ;; > 0); returns how many it listed
  (func $accumulate (param $h i32) (param $hEnd i32) (param $ranges i32) (param $score i32) (param $touched i32) (result i32)
    (local $m i32) (local $p i32) (local $end i32) (local $j i32) (local $c i32) (local $v f64) (local $n i32)
    ${overLists(`
        (local.set $v (f64.load (local.get $c)))
        (f64.store (local.get $c) (f64.add (local.get $v) (f64.promote_f32 (f32.load offset=4 (local.get $p)))))
        (i32.store (i32.add (local.get $touched) (i32.shl (local.get $n) (i32.const 2))) (local.get $j))
        (local.set $n (i32.add (local.get $n) (f64.eq (local.get $v) (f64.const 0))))`)}
    (local.get $n))

  ;; score[j] = v for each j of the list [q, qEnd)
  (func $setScores (param $q i32) (param $qEnd i32) (param $score i32) (param $v f64)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $q) (local.get $qEnd)))
      (f64.store (i32.add (local.get $score) (i32.shl (i32.load (local.get $q)) (i32.const 3))) (local.get $v))
      (local.set $q (i32.add (local.get $q) (i32.const 4)))
      (br $next))))

  ;; score[j] += sim over the lists of history[h..hEnd), as $accumulate, without listing the movies
  (func $accumulateAll (param $h i32) (param $hEnd i32) (param $ranges i32) (param $score i32)
    (local $m i32) (local $p i32) (local $end i32) (local $j i32) (local $c i32)
    ${overLists(`
        (f64.store (local.get $c) (f64.add (f64.load (local.get $c)) (f64.promote_f32 (f32.load offset=4 (local.get $p)))))`)})

  ;; how many pairs the lists of history[h..hEnd) hold
  (func $pairsOf (param $h i32) (param $hEnd i32) (param $ranges i32) (result i32)
    (local $bytes i32) (local $m i32)
    (block $done (loop $movie
      (br_if $done (i32.ge_u (local.get $h) (local.get $hEnd)))
      (local.set $m (i32.add (local.get $ranges) (i32.shl (i32.load (local.get $h)) (i32.const 3))))
      (local.set $bytes (i32.add (local.get $bytes) (i32.sub (i32.load offset=4 (local.get $m)) (i32.load (local.get $m)))))
      (local.set $h (i32.add (local.get $h) (i32.const 4)))
      (br $movie)))
    (i32.shr_u (local.get $bytes) (i32.const 3)))

  ;; (v, j) into the top of kept (< n, or n and (v, j) better than the last) entries, sorted by score descending,
  ;; movieId_enc ascending; returns the new count
  (func $insert (param $v f64) (param $j i32) (param $kept i32) (param $n i32) (param $topIds i32) (param $topScores i32) (result i32)
    (local $pos i32) (local $w f64) (local $i i32)
    (local.set $pos (local.get $kept))
    (block $placed (loop $up
      (br_if $placed (i32.eqz (local.get $pos)))
      (local.set $w (f64.load (i32.add (local.get $topScores) (i32.shl (i32.sub (local.get $pos) (i32.const 1)) (i32.const 3)))))
      (local.set $i (i32.load (i32.add (local.get $topIds) (i32.shl (i32.sub (local.get $pos) (i32.const 1)) (i32.const 2)))))
      (br_if $placed (i32.eqz (i32.or (f64.gt (local.get $v) (local.get $w))
        (i32.and (f64.eq (local.get $v) (local.get $w)) (i32.lt_s (local.get $j) (local.get $i))))))
      ;; (v, j) is better than the one at pos - 1: that one moves down, unless it falls off the end
      (if (i32.lt_u (local.get $pos) (local.get $n)) (then
        (f64.store (i32.add (local.get $topScores) (i32.shl (local.get $pos) (i32.const 3))) (local.get $w))
        (i32.store (i32.add (local.get $topIds) (i32.shl (local.get $pos) (i32.const 2))) (local.get $i))))
      (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
      (br $up)))
    (if (i32.lt_u (local.get $pos) (local.get $n)) (then
      (f64.store (i32.add (local.get $topScores) (i32.shl (local.get $pos) (i32.const 3))) (local.get $v))
      (i32.store (i32.add (local.get $topIds) (i32.shl (local.get $pos) (i32.const 2))) (local.get $j))))
    (select (local.get $n) (i32.add (local.get $kept) (i32.const 1)) (i32.eq (local.get $kept) (local.get $n))))

  ;; The user's top n (n >= 1) of nMovies: accumulate over history[h..hEnd), the movies of rated[r..rEnd) excluded
  ;; (scored -inf meanwhile, so never taken), then the best n of the scored movies by score descending, movieId_enc
  ;; ascending, best first in topIds/topScores. Every listed score is > 0, so the last of the top starts at 0 and most
  ;; movies fail one comparison with it. A history whose lists hold nMovies / 2 pairs or more scores without listing
  ;; the movies and then scans all scores in order, two at a time (score is padded to 16 bytes); a shorter one lists
  ;; them in touched. Leaves score all zero. Returns how many it kept (<= n).
  (func (export "rankUser") (param $h i32) (param $hEnd i32) (param $r i32) (param $rEnd i32) (param $ranges i32) (param $nMovies i32)
        (param $score i32) (param $touched i32) (param $n i32) (param $topIds i32) (param $topScores i32) (result i32)
    (local $listed i32) (local $t i32) (local $j i32) (local $c i32) (local $v f64) (local $kept i32)
    (local $lastV f64) (local $lastId i32) (local $p i32) (local $end i32) (local $two v128) (local $bar v128)
    (call $setScores (local.get $r) (local.get $rEnd) (local.get $score) (f64.const -inf))
    (if (i32.ge_u (call $pairsOf (local.get $h) (local.get $hEnd) (local.get $ranges)) (i32.shr_u (local.get $nMovies) (i32.const 1))) (then
      (call $accumulateAll (local.get $h) (local.get $hEnd) (local.get $ranges) (local.get $score))
      (local.set $p (local.get $score))
      (local.set $end (i32.add (local.get $score) (i32.shl (local.get $nMovies) (i32.const 3))))
      ;; in ascending order a movie equal to the last of the top never goes before it: only a greater score counts
      (block $scanned (loop $scan
        (br_if $scanned (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $two (v128.load (local.get $p)))
        (v128.store (local.get $p) (v128.const i64x2 0 0))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br_if $scan (i32.eqz (v128.any_true (f64x2.gt (local.get $two) (local.get $bar)))))
        (local.set $j (i32.shr_u (i32.sub (local.get $p) (i32.add (local.get $score) (i32.const 16))) (i32.const 3)))
        (if (f64.gt (f64x2.extract_lane 0 (local.get $two)) (local.get $lastV)) (then
          (local.set $kept (call $insert (f64x2.extract_lane 0 (local.get $two)) (local.get $j) (local.get $kept) (local.get $n) (local.get $topIds) (local.get $topScores)))
          (if (i32.eq (local.get $kept) (local.get $n)) (then
            (local.set $lastV (f64.load (i32.add (local.get $topScores) (i32.shl (i32.sub (local.get $n) (i32.const 1)) (i32.const 3)))))))))
        (if (f64.gt (f64x2.extract_lane 1 (local.get $two)) (local.get $lastV)) (then
          (local.set $kept (call $insert (f64x2.extract_lane 1 (local.get $two)) (i32.add (local.get $j) (i32.const 1)) (local.get $kept) (local.get $n) (local.get $topIds) (local.get $topScores)))
          (if (i32.eq (local.get $kept) (local.get $n)) (then
            (local.set $lastV (f64.load (i32.add (local.get $topScores) (i32.shl (i32.sub (local.get $n) (i32.const 1)) (i32.const 3)))))))))
        (local.set $bar (f64x2.splat (local.get $lastV)))
        (br $scan)))
      (return (local.get $kept))))
    (local.set $listed (call $accumulate (local.get $h) (local.get $hEnd) (local.get $ranges) (local.get $score) (local.get $touched)))
    (block $done (loop $candidate
      (br_if $done (i32.ge_u (local.get $t) (local.get $listed)))
      (local.set $j (i32.load (i32.add (local.get $touched) (i32.shl (local.get $t) (i32.const 2)))))
      (local.set $c (i32.add (local.get $score) (i32.shl (local.get $j) (i32.const 3))))
      (local.set $v (f64.load (local.get $c)))
      (f64.store (local.get $c) (f64.const 0))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br_if $candidate (f64.lt (local.get $v) (local.get $lastV)))
      (br_if $candidate (i32.and (f64.eq (local.get $v) (local.get $lastV)) (i32.ge_s (local.get $j) (local.get $lastId))))
      (local.set $kept (call $insert (local.get $v) (local.get $j) (local.get $kept) (local.get $n) (local.get $topIds) (local.get $topScores)))
      (br_if $candidate (i32.lt_u (local.get $kept) (local.get $n)))
      (local.set $lastV (f64.load (i32.add (local.get $topScores) (i32.shl (i32.sub (local.get $n) (i32.const 1)) (i32.const 3)))))
      (local.set $lastId (i32.load (i32.add (local.get $topIds) (i32.shl (i32.sub (local.get $n) (i32.const 1)) (i32.const 2)))))
      (br $candidate)))
    (call $setScores (local.get $r) (local.get $rEnd) (local.get $score) (f64.const 0))
    (local.get $kept))
)`;

export interface Kernel {
  countAll(p: number, pEnd: number, counts: number, base: number): void;
  countBits(list: number, listEnd: number, counts: number, n: number): void;
  countList(p: number, pEnd: number, counts: number, touched: number, base: number): number;
  sumList(p: number, pEnd: number, users: number, invD: number, sums: number, touched: number, base: number): number;
  scanAll(n: number, counts: number, b: number, thr: number, axR: number, bar: number, pass: number, passV: number): number;
  scanList(n: number, touched: number, counts: number, b: number, thr: number, axR: number, bar: number, pass: number, passV: number): number;
  scanListSums(n: number, touched: number, sums: number, a: number, b: number, thr: number, axR: number, bxR: number, bar: number, pass: number, passV: number): number;
  rankUser(h: number, hEnd: number, r: number, rEnd: number, ranges: number, nMovies: number, score: number, touched: number, n: number, topIds: number, topScores: number): number;
}

// The few WebAssembly declarations used here (TypeScript declares them only with the DOM's types).
export type WasmModule = object;
export interface WasmMemory { buffer: SharedArrayBuffer }
const WebAssembly = (globalThis as unknown as { WebAssembly: {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
} }).WebAssembly;

let compiled: Promise<WasmModule> | undefined;

/** The kernel's module, assembled from its text once per process. */
export function kernelModule(): Promise<WasmModule> {
  compiled ??= assemble("kernel.wat", WAT);
  return compiled;
}

/** A module from WebAssembly text (SIMD, threads). */
async function assemble(file: string, wat: string): Promise<WasmModule> {
  const parsed = (await wabt()).parseWat(file, wat, { simd: true, threads: true });
  try {
    return new WebAssembly.Module(parsed.toBinary({}).buffer);
  } finally {
    parsed.destroy();
  }
}

/** The kernel's functions on `memory`, for the calling thread. */
export const instantiate = (module: WasmModule, memory: WasmMemory): Kernel =>
  new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Kernel;

type Kind = "u16" | "i32" | "f32" | "f64";
type Spec = Record<string, [Kind, number]>;
type ViewOf<K extends Kind> = K extends "u16" ? Uint16Array : K extends "i32" ? Int32Array : K extends "f32" ? Float32Array : Float64Array;
type Views<S extends Spec> = { [K in keyof S]: ViewOf<S[K][0]> };

/**
 * One shared memory holding the `common` arrays (name: [type, length]) and `perThread` ones for each of
 * `threads`, each padded to 16 bytes; a view's byteOffset is its address for the kernel. `what` names
 * the data when it does not fit.
 */
export function sharedMemory<S extends Spec, T extends Spec>(
  common: S, perThread: T, threads: number, what = "the neighbours",
): { memory: WasmMemory; common: Views<S>; threads: Views<T>[] } {
  const specs = [common, ...Array.from({ length: threads }, () => perThread)];
  let bytes = 16;
  const offsets = specs.map((spec) => Object.values(spec).map(([kind, length]) => {
    const at = bytes;
    bytes += Math.ceil((length * { u16: 2, i32: 4, f32: 4, f64: 8 }[kind]) / 16) * 16;
    return at;
  }));
  const pages = Math.ceil(bytes / 65536);
  if (pages > 65536) throw new RangeError(`${what} need ${(bytes / 2 ** 30).toFixed(1)} GB of WebAssembly memory; at most 4 GB fit`);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const views = specs.map((spec, i) => Object.fromEntries(Object.entries(spec).map(([name, [kind, length]], j) => {
    const Ctor = { u16: Uint16Array, i32: Int32Array, f32: Float32Array, f64: Float64Array }[kind];
    return [name, new Ctor(memory.buffer, offsets[i][j], length)];
  })));
  return { memory, common: views[0] as Views<S>, threads: views.slice(1) as Views<T>[] };
}

/**
 * ALS's hot loops (lib/als.ts), f64 over one shared memory: a row's likes (the CG's YᵀC_uY products
 * without forming them) and the f x f gram times a vector. Pairs of factors go through f64x2; an odd
 * last factor alone.
 */
const ALS_WAT = `(module
  (memory (import "env" "memory") 1 65536 shared)

  ;; the dot product of the f64 vectors at x and y, fb bytes long, two lanes at a time up to pairs (fb rounded down to 16)
  (func $dot (param $x i32) (param $y i32) (param $fb i32) (param $pairs i32) (result f64)
    (local $a i32) (local $acc v128) (local $sum f64)
    (block $done (loop $step
      (br_if $done (i32.ge_u (local.get $a) (local.get $pairs)))
      (local.set $acc (f64x2.add (local.get $acc)
        (f64x2.mul (v128.load (i32.add (local.get $x) (local.get $a))) (v128.load (i32.add (local.get $y) (local.get $a))))))
      (local.set $a (i32.add (local.get $a) (i32.const 16)))
      (br $step)))
    (local.set $sum (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc))))
    (if (result f64) (i32.lt_u (local.get $pairs) (local.get $fb))
      (then (f64.add (local.get $sum) (f64.mul (f64.load (i32.add (local.get $x) (local.get $pairs))) (f64.load (i32.add (local.get $y) (local.get $pairs))))))
      (else (local.get $sum))))

  ;; out += sum over the n likes q (indices at idx, data at dat) of (b * c_q + s * (c_q - 1) * (g_q . v)) g_q,
  ;; c_q = 1 + confidence * data[q], g_q the f factors at G + 8 f indices[q]
  (func (export "likes") (param $idx i32) (param $dat i32) (param $n i32) (param $G i32) (param $v i32) (param $out i32)
    (param $f i32) (param $confidence f64) (param $b f64) (param $s f64)
    (local $end i32) (local $fb i32) (local $pairs i32) (local $g i32) (local $a i32) (local $acc v128) (local $c f64) (local $w f64)
    (local.set $end (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $fb (i32.shl (local.get $f) (i32.const 3)))
    (local.set $pairs (i32.and (local.get $fb) (i32.const -16)))
    (block $done (loop $like
      (br_if $done (i32.ge_u (local.get $idx) (local.get $end)))
      (local.set $g (i32.add (local.get $G) (i32.mul (i32.load (local.get $idx)) (local.get $fb))))
      (local.set $c (f64.add (f64.const 1) (f64.mul (local.get $confidence) (f64.load (local.get $dat)))))
      (local.set $w (call $dot (local.get $g) (local.get $v) (local.get $fb) (local.get $pairs)))
      (local.set $w (f64.add (f64.mul (local.get $b) (local.get $c))
        (f64.mul (f64.mul (local.get $s) (f64.sub (local.get $c) (f64.const 1))) (local.get $w))))
      (local.set $acc (f64x2.splat (local.get $w)))
      (local.set $a (i32.const 0))
      (block $axpyDone (loop $axpy
        (br_if $axpyDone (i32.ge_u (local.get $a) (local.get $pairs)))
        (v128.store (i32.add (local.get $out) (local.get $a)) (f64x2.add (v128.load (i32.add (local.get $out) (local.get $a)))
          (f64x2.mul (local.get $acc) (v128.load (i32.add (local.get $g) (local.get $a))))))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (br $axpy)))
      (if (i32.lt_u (local.get $pairs) (local.get $fb)) (then
        (f64.store (i32.add (local.get $out) (local.get $pairs)) (f64.add (f64.load (i32.add (local.get $out) (local.get $pairs)))
          (f64.mul (local.get $w) (f64.load (i32.add (local.get $g) (local.get $pairs))))))))
      (local.set $idx (i32.add (local.get $idx) (i32.const 4)))
      (local.set $dat (i32.add (local.get $dat) (i32.const 8)))
      (br $like))))

  ;; out = s * M v, M f x f row-major
  (func (export "gemv") (param $M i32) (param $v i32) (param $out i32) (param $f i32) (param $s f64)
    (local $fb i32) (local $pairs i32) (local $end i32)
    (local.set $fb (i32.shl (local.get $f) (i32.const 3)))
    (local.set $pairs (i32.and (local.get $fb) (i32.const -16)))
    (local.set $end (i32.add (local.get $out) (local.get $fb)))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (f64.store (local.get $out) (f64.mul (local.get $s) (call $dot (local.get $M) (local.get $v) (local.get $fb) (local.get $pairs))))
      (local.set $M (i32.add (local.get $M) (local.get $fb)))
      (local.set $out (i32.add (local.get $out) (i32.const 8)))
      (br $row))))
)`;

export interface AlsKernel {
  likes(idx: number, dat: number, n: number, G: number, v: number, out: number, f: number, confidence: number, b: number, s: number): void;
  gemv(M: number, v: number, out: number, f: number, s: number): void;
}

let alsCompiled: Promise<WasmModule> | undefined;

/** ALS's kernel module, assembled once per process. */
export function alsKernelModule(): Promise<WasmModule> {
  alsCompiled ??= assemble("als.wat", ALS_WAT);
  return alsCompiled;
}

/** ALS's kernel functions on `memory`, for the calling thread. */
export const instantiateAls = (module: WasmModule, memory: WasmMemory): AlsKernel =>
  new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as AlsKernel;
