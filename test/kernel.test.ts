import { test } from "node:test";
import assert from "node:assert/strict";
import { instantiate, kernelModule, sharedMemory } from "../lib/kernel";

async function setup() {
  const { memory, common } = sharedMemory({
    counts: ["i32", 8], b: ["f32", 8], thr: ["f32", 8], pass: ["i32", 8], passV: ["f64", 8],
    uIdx: ["i32", 12], entries: ["i32", 6], starts: ["i32", 2], mids: ["i32", 2], invD: ["f64", 4],
  }, {}, 0);
  return { kernel: instantiate(await kernelModule(), memory), ...common };
}

/** User 0 likes 0, 2, 3, 4, 5 in train and 1 in test; user 1 likes 1 in train and 0, 2 in test. */
function rows({ uIdx, entries, starts, mids }: Awaited<ReturnType<typeof setup>>) {
  uIdx.set([0, 2, 3, 4, 5, 1, 1, 0, 2]);
  const at = (i: number) => uIdx.byteOffset + 4 * i;
  starts.set([at(0), at(6)]);
  mids.set([at(5), at(7)]);
  // entry 0: user 0's whole row; entry 1: user 1's train part and its first test like
  entries.set([0, at(5), at(6), 1, at(7), at(8)]);
  return { p: entries.byteOffset, pEnd: entries.byteOffset + 24, starts: starts.byteOffset, mids: mids.byteOffset };
}

test("countAll and countList add incT over train segments and incS over test ones; countList lists first touches in order", async () => {
  const setupped = await setup();
  const { kernel, counts, pass: touched } = setupped;
  const { p, pEnd, starts, mids } = rows(setupped);
  // two fits packed: train pairs count in both halves
  assert.equal(kernel.countList(p, pEnd, starts, mids, counts.byteOffset, 0x10001, 1, touched.byteOffset, 0), 6);
  assert.deepEqual([...counts.subarray(0, 7)], [0x10002, 0x10002, 0x10001, 0x10001, 0x10001, 0x10001, 0]);
  assert.deepEqual([...touched.subarray(0, 6)], [0, 2, 3, 4, 5, 1]);
  // listing goes on after the n already listed
  counts.fill(0);
  assert.equal(kernel.countList(p + 12, pEnd, starts, mids, counts.byteOffset, 1, 1, touched.byteOffset, 2), 4);
  assert.deepEqual([...touched.subarray(0, 4)], [0, 2, 1, 0]);
  // incS 0 skips the test segments
  kernel.countAll(p, pEnd, starts, mids, counts.byteOffset, 1, 0);
  assert.deepEqual([...counts.subarray(0, 7)], [2, 2, 1, 1, 1, 1, 0]);
});

test("sumList adds each entry's user weight over its train segments", async () => {
  const setupped = await setup();
  const { kernel, invD, passV: sums, pass: touched } = setupped;
  const { p, pEnd, starts } = rows(setupped);
  invD.set([0.5, 0.25]);
  assert.equal(kernel.sumList(p, pEnd, starts, invD.byteOffset, sums.byteOffset, touched.byteOffset), 6);
  assert.deepEqual([...sums.subarray(0, 6)], [0.5, 0.25, 0.5, 0.5, 0.5, 0.5]);
  assert.deepEqual([...touched.subarray(0, 6)], [0, 2, 3, 4, 5, 1]);
});

test("scanAll and scanList list the pairs passing y's bar (1) or x's (2) with their counts, and clear the counts", async () => {
  const { kernel, counts, b, thr, pass, passV, uIdx: touched } = await setup();
  // e = count * 1 * 0.5: 1.5, 0, 0.5, 1, 2.5 against thr 1, 1, 0.1, 10, 0.2 and bar 1.4
  const fill = () => {
    counts.set([3, 0, 1, 2, 5, 0, 0, 0]);
    b.fill(0.5);
    thr.set([1, 1, 0.1, 10, 0.2, 1, 1, 1]);
  };
  fill();
  assert.equal(kernel.scanAll(5, counts.byteOffset, 0, -1, 1, b.byteOffset, thr.byteOffset, 1, 1.4, pass.byteOffset, passV.byteOffset), 3);
  assert.deepEqual([...pass.subarray(0, 3)], [(0 << 2) | 3, (2 << 2) | 1, (4 << 2) | 3]);
  assert.deepEqual([...passV.subarray(0, 3)], [3, 1, 5]);
  assert.deepEqual([...counts], [0, 0, 0, 0, 0, 0, 0, 0]);

  // the same counts in the high halves of packed words, low halves that would all pass: read, not cleared
  fill();
  const packed = Int32Array.from(counts, (c) => (c << 16) | 9);
  counts.set(packed);
  assert.equal(kernel.scanAll(5, counts.byteOffset, 16, 0xffff, 0, b.byteOffset, thr.byteOffset, 1, 1.4, pass.byteOffset, passV.byteOffset), 3);
  assert.deepEqual([...pass.subarray(0, 3)], [(0 << 2) | 3, (2 << 2) | 1, (4 << 2) | 3]);
  assert.deepEqual([...passV.subarray(0, 3)], [3, 1, 5]);
  assert.deepEqual([...counts], [...packed]);

  fill();
  touched.set([4, 3, 0, 2]);
  assert.equal(kernel.scanList(4, touched.byteOffset, counts.byteOffset, 0, -1, 1, b.byteOffset, thr.byteOffset, 1, 1.4, pass.byteOffset, passV.byteOffset), 3);
  assert.deepEqual([...pass.subarray(0, 3)], [(4 << 2) | 3, (0 << 2) | 3, (2 << 2) | 1]);
  assert.deepEqual([...passV.subarray(0, 3)], [5, 3, 1]);
  assert.deepEqual([...counts.subarray(0, 5)], [0, 0, 0, 0, 0]);
});

test("scanBoth lists each fit's pairs from its half of packed counts, as scanAll would, and clears the counts", async () => {
  const { memory, common } = sharedMemory({
    counts: ["i32", 8], b: ["f32", 8], thr: ["f32", 8], b2: ["f32", 8], thr2: ["f32", 8],
    pass: ["i32", 8], passV: ["f64", 8], pass2: ["i32", 8], passV2: ["f64", 8],
  }, {}, 0);
  const kernel = instantiate(await kernelModule(), memory);
  const { counts, b, thr, b2, thr2, pass, passV, pass2, passV2 } = common;
  const at = (a: { byteOffset: number }) => a.byteOffset;
  // first fit (high halves) as scanAll's test above; the second (low halves): e = count * 2 * 1 against thr2 3, bar 7
  const high = [3, 0, 1, 2, 5, 0, 0, 0], low = [1, 2, 0, 4, 3, 0, 0, 0];
  counts.set(high.map((c, y) => (c << 16) | low[y]));
  b.fill(0.5);
  thr.set([1, 1, 0.1, 10, 0.2, 1, 1, 1]);
  b2.fill(1);
  thr2.fill(3);
  assert.deepEqual(kernel.scanBoth(5, at(counts), at(b), at(thr), 1, 1.4, at(pass), at(passV), at(b2), at(thr2), 2, 7, at(pass2), at(passV2)), [3, 3]);
  assert.deepEqual([...pass.subarray(0, 3)], [(0 << 2) | 3, (2 << 2) | 1, (4 << 2) | 3]);
  assert.deepEqual([...passV.subarray(0, 3)], [3, 1, 5]);
  assert.deepEqual([...pass2.subarray(0, 3)], [(1 << 2) | 1, (3 << 2) | 3, (4 << 2) | 1]);
  assert.deepEqual([...passV2.subarray(0, 3)], [2, 4, 3]);
  assert.deepEqual([...counts], [0, 0, 0, 0, 0, 0, 0, 0]);
});

test("accumulate sums the history's neighbour lists in float64 and lists each movie once", async () => {
  const { memory, common } = sharedMemory({
    history: ["i32", 2], indptr: ["i32", 4], indices: ["i32", 3], sims: ["f32", 3], score: ["f64", 3], touched: ["i32", 3],
  }, {}, 0);
  const kernel = instantiate(await kernelModule(), memory);
  const { history, indptr, indices, sims, score, touched } = common;
  // movie 0: (1, 0.5), (2, 0.1); movie 1: (2, 0.5)
  indptr.set([0, 2, 3, 3]);
  indices.set([1, 2, 2]);
  sims.set([0.5, 0.1, 0.5]);
  history.set([0, 1]);
  const at = (a: { byteOffset: number }) => a.byteOffset;
  assert.equal(kernel.accumulate(at(history), at(history) + 8, at(indptr), at(indices), at(sims), at(score), at(touched)), 2);
  assert.deepEqual([...score], [0, 0.5, Math.fround(0.1) + 0.5]);
  assert.deepEqual([...touched.subarray(0, 2)], [1, 2]);
});
