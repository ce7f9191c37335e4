import { test } from "node:test";
import assert from "node:assert/strict";
import { instantiate, kernelModule, sharedMemory } from "../lib/kernel";
import { rankFromHistory } from "../lib/recommend";
import { random } from "../lib/synthetic";

async function setup() {
  const { memory, common } = sharedMemory({
    counts: ["i32", 8], b: ["f32", 8], thr: ["f32", 8], pass: ["i32", 8], passV: ["f64", 8],
    uIdx: ["u16", 8], seg: ["i32", 8], users: ["i32", 4], invD: ["f64", 4],
  }, {}, 0);
  return { kernel: instantiate(await kernelModule(), memory), ...common };
}

test("countAll and countList count the segments of each entry from base; countList lists first touches in order", async () => {
  const { kernel, counts, uIdx, seg, pass: touched } = await setup();
  uIdx.set([0, 2, 1, 0, 2, 2]);
  // entry 0: uIdx[0..2) = {0, 2}; entry 1: uIdx[2..5) = {1, 0, 2}
  seg.set([uIdx.byteOffset, uIdx.byteOffset + 4, uIdx.byteOffset + 4, uIdx.byteOffset + 10]);
  assert.equal(kernel.countList(seg.byteOffset, seg.byteOffset + 16, counts.byteOffset, touched.byteOffset, 0), 3);
  assert.deepEqual([...counts.subarray(0, 4)], [2, 1, 2, 0]);
  assert.deepEqual([...touched.subarray(0, 3)], [0, 2, 1]);
  kernel.countAll(seg.byteOffset, seg.byteOffset + 8, counts.byteOffset, 0);
  assert.deepEqual([...counts.subarray(0, 4)], [3, 1, 3, 0]);
  assert.equal(kernel.countList(seg.byteOffset, seg.byteOffset + 8, counts.byteOffset, touched.byteOffset, 4), 2);
  kernel.countAll(seg.byteOffset + 8, seg.byteOffset + 16, counts.byteOffset, 4);
  assert.deepEqual([...counts], [3, 1, 3, 0, 2, 1, 2, 0]);
  assert.deepEqual([...touched.subarray(0, 2)], [4, 6]);
});

test("sumList adds each entry's user weight", async () => {
  const { kernel, uIdx, seg, users, invD, passV: sums, pass: touched } = await setup();
  uIdx.set([1, 3, 1]);
  seg.set([uIdx.byteOffset, uIdx.byteOffset + 4, uIdx.byteOffset + 4, uIdx.byteOffset + 6]);
  users.set([1, 0]);
  invD.set([0.5, 0.25]);
  assert.equal(kernel.sumList(seg.byteOffset, seg.byteOffset + 16, users.byteOffset, invD.byteOffset, sums.byteOffset, touched.byteOffset, 2), 2);
  assert.deepEqual([...sums.subarray(0, 6)], [0, 0, 0, 0.75, 0, 0.25]);
  assert.deepEqual([...touched.subarray(0, 2)], [3, 5]);
});

test("scanAll and scanList list the pairs passing y's bar (1) or x's (2) with their counts, and clear the counts", async () => {
  const { kernel, counts, b, thr, pass, passV, users: touched } = await setup();
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

test("rankUser equals rankFromHistory: sums in float64 in history order, rated movies excluded, ties by movieId_enc; short histories and long ones (scanned)", async () => {
  // odd: the scan of a long history reads the score array's padding too
  const nMovies = 41, n = 5, rand = random(7);
  // lists of up to 8 neighbours, sims from a few values so that sums tie
  const lists = Array.from({ length: nMovies }, (_, m) => Array.from({ length: nMovies }, (_, j) => j).filter((j) => j !== m && rand() < 0.2).slice(0, 8));
  const indptr = Int32Array.from([0, ...lists.map((_, m) => lists.slice(0, m + 1).flat().length)]);
  const indices = Int32Array.from(lists.flat()), sims = Float32Array.from(indices, () => [0.1, 0.25, 0.3][Math.floor(rand() * 3)]);
  const { memory, common, threads: [scratch] } = sharedMemory({ ranges: ["i32", 2 * nMovies], pairs: ["i32", 2 * indices.length], history: ["i32", nMovies], rated: ["i32", nMovies] },
    { score: ["f64", nMovies], touched: ["i32", nMovies], topIds: ["i32", n], topScores: ["f64", n] }, 1);
  const pairSims = new Float32Array(common.pairs.buffer, common.pairs.byteOffset, common.pairs.length);
  // lists stored in reverse movie order: only ranges say where each is
  for (let m = nMovies - 1, q = 0; m >= 0; m--) {
    common.ranges[2 * m] = common.pairs.byteOffset + 8 * q;
    for (let p = indptr[m]; p < indptr[m + 1]; p++, q++) [common.pairs[2 * q], pairSims[2 * q + 1]] = [indices[p], sims[p]];
    common.ranges[2 * m + 1] = common.pairs.byteOffset + 8 * q;
  }
  const kernel = instantiate(await kernelModule(), memory);
  const at = (a: { byteOffset: number }) => a.byteOffset;
  const paths = { listed: 0, scanned: 0 };
  for (let user = 0; user < 400; user++) {
    const density = [0.02, 0.05, 0.15, 0.4][user % 4];
    const history = Int32Array.from({ length: nMovies }, (_, m) => m).filter(() => rand() < density);
    const rated = Int32Array.from({ length: nMovies }, (_, m) => m).filter((m) => history.includes(m) || rand() < 0.1);
    if (history.length === 0) continue;
    common.history.set(history);
    common.rated.set(rated);
    const got = kernel.rankUser(at(common.history), at(common.history) + 4 * history.length, at(common.rated), at(common.rated) + 4 * rated.length,
      at(common.ranges), nMovies, at(scratch.score), at(scratch.touched), n, at(scratch.topIds), at(scratch.topScores));
    const expected = rankFromHistory({ indptr, indices, sims }, new Int32Array(0), history, rated, n);
    assert.deepEqual([...scratch.topIds.subarray(0, got)], [...expected.movies]);
    assert.deepEqual([...scratch.topScores.subarray(0, got)], [...expected.scores]);
    assert.ok(scratch.score.every((v) => v === 0));
    const pairs = history.reduce((sum, m) => sum + indptr[m + 1] - indptr[m], 0);
    paths[pairs >= nMovies >> 1 ? "scanned" : "listed"]++;
  }
  assert.ok(paths.listed > 50 && paths.scanned > 50, JSON.stringify(paths));
});
