import { test } from "node:test";
import assert from "node:assert/strict";
import type { Neighbours } from "../lib/neighbours";
import { popularOrder, rankFromHistory, rankPopularFor } from "../lib/recommend";
import { denseRecommend } from "./reference";

// Five movies; sims chosen so that sums need care and ties occur.
const lists: [number, number][][] = [
  [[1, 0.5], [2, 0.25]],   // movie 0
  [[0, 0.5], [3, 0.5]],    // movie 1
  [[4, 0.75], [0, 0.25]],  // movie 2
  [[1, 0.5], [4, 0.25]],   // movie 3
  [[2, 0.75], [3, 0.25]],  // movie 4
];
const neighbours: Neighbours = {
  indptr: Int32Array.from([0, 2, 4, 6, 8, 10]),
  indices: Int32Array.from(lists.flat().map(([j]) => j)),
  sims: Float32Array.from(lists.flat().map(([, s]) => s)),
};
const dense = { indices: lists.map((l) => l.map(([j]) => j)), sims: lists.map((l) => l.map(([, s]) => s)) };

test("recommend sums sims over the history and excludes what was rated (hand-worked)", () => {
  // history {0, 3}: score(1) = 0.5 + 0.5 = 1, score(2) = 0.25, score(4) = 0.25; 0 and 3 rated
  const r = rankFromHistory(neighbours, new Int32Array(0), [0, 3], [0, 3], 10);
  assert.deepEqual([...r.movies], [1, 2, 4]);
  assert.deepEqual([...r.scores], [1, 0.25, 0.25]);
  assert.equal(r.fallback, null);
  // movie 1 rated but not liked: excluded, not a source of scores
  assert.deepEqual([...rankFromHistory(neighbours, new Int32Array(0), [0, 3], [0, 1, 3], 1).movies], [2]);
});

test("recommend agrees with the dense reference for every history", () => {
  for (let mask = 1; mask < 32; mask++) {
    const history = [0, 1, 2, 3, 4].filter((m) => mask & (1 << m));
    for (const n of [1, 2, 5]) {
      const r = rankFromHistory(neighbours, new Int32Array(0), history, history, n);
      assert.deepEqual([...r.movies], denseRecommend(dense, history, history, n), `history ${history}, n ${n}`);
    }
  }
});

test("popular order: likes descending, ties by movieId_enc, movies without likes left out", () => {
  const popular = popularOrder(Int32Array.from([3, 0, 5, 3, 1]));
  assert.deepEqual([...popular], [2, 0, 3, 4]);
  assert.deepEqual([...rankPopularFor(neighbours, popular, [2], 2).movies], [0, 3]);
  const empty = rankFromHistory(neighbours, popular, [], [0], 3);
  assert.equal(empty.fallback, "popular");
  assert.deepEqual([...empty.movies], [2, 3, 4]);
});
