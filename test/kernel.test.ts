import { test } from "node:test";
import assert from "node:assert/strict";
import { instantiate, kernelModule, sharedMemory } from "../lib/kernel";

async function setup() {
  const { memory, common } = sharedMemory({
    counts: ["i32", 8], b: ["f32", 8], thr: ["f32", 8], pass: ["i32", 8], passV: ["f64", 8],
    uIdx: ["i32", 8], seg: ["i32", 8], users: ["i32", 4], invD: ["f64", 4],
  }, {}, 0);
  return { kernel: instantiate(await kernelModule(), memory), ...common };
}

test("countAll and countList count the segments of each entry; countList lists first touches in order", async () => {
  const { kernel, counts, uIdx, seg, pass: touched } = await setup();
  uIdx.set([0, 2, 1, 0, 2, 2]);
  // entry 0: uIdx[0..2) = {0, 2}; entry 1: uIdx[2..5) = {1, 0, 2}
  seg.set([uIdx.byteOffset, uIdx.byteOffset + 8, uIdx.byteOffset + 8, uIdx.byteOffset + 20]);
  assert.equal(kernel.countList(seg.byteOffset, seg.byteOffset + 16, counts.byteOffset, touched.byteOffset), 3);
  assert.deepEqual([...counts.subarray(0, 4)], [2, 1, 2, 0]);
  assert.deepEqual([...touched.subarray(0, 3)], [0, 2, 1]);
  kernel.countAll(seg.byteOffset, seg.byteOffset + 8, counts.byteOffset);
  assert.deepEqual([...counts.subarray(0, 4)], [3, 1, 3, 0]);
});

test("sumList adds each entry's user weight", async () => {
  const { kernel, uIdx, seg, users, invD, passV: sums, pass: touched } = await setup();
  uIdx.set([1, 3, 1]);
  seg.set([uIdx.byteOffset, uIdx.byteOffset + 8, uIdx.byteOffset + 8, uIdx.byteOffset + 12]);
  users.set([1, 0]);
  invD.set([0.5, 0.25]);
  assert.equal(kernel.sumList(seg.byteOffset, seg.byteOffset + 16, users.byteOffset, invD.byteOffset, sums.byteOffset, touched.byteOffset), 2);
  assert.deepEqual([...sums.subarray(0, 4)], [0, 0.75, 0, 0.25]);
  assert.deepEqual([...touched.subarray(0, 2)], [1, 3]);
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
  assert.equal(kernel.scanAll(5, counts.byteOffset, b.byteOffset, thr.byteOffset, 1, 1.4, pass.byteOffset, passV.byteOffset), 3);
  assert.deepEqual([...pass.subarray(0, 3)], [(0 << 2) | 3, (2 << 2) | 1, (4 << 2) | 3]);
  assert.deepEqual([...passV.subarray(0, 3)], [3, 1, 5]);
  assert.deepEqual([...counts], [0, 0, 0, 0, 0, 0, 0, 0]);

  fill();
  touched.set([4, 3, 0, 2]);
  assert.equal(kernel.scanList(4, touched.byteOffset, counts.byteOffset, b.byteOffset, thr.byteOffset, 1, 1.4, pass.byteOffset, passV.byteOffset), 3);
  assert.deepEqual([...pass.subarray(0, 3)], [(4 << 2) | 3, (0 << 2) | 3, (2 << 2) | 1]);
  assert.deepEqual([...passV.subarray(0, 3)], [5, 3, 1]);
  assert.deepEqual([...counts.subarray(0, 5)], [0, 0, 0, 0, 0]);
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
