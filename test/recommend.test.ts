import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Neighbours } from "../lib/neighbours";
import { loadModel, saveModel } from "../lib/model-io";
import { DEFAULTS } from "../lib/params";
import { historyOf, popularOrder, rankFromHistory, rankInKernel, recommendForUser } from "../lib/recommend";
import { PRESETS, syntheticDir } from "../lib/synthetic";
import { train } from "../lib/train";
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

test("in the kernel (the server's path), recommend ranks exactly as in script: every history of the hand-worked lists, and a trained model's users", async () => {
  const inKernel = { ...neighbours };
  await rankInKernel(inKernel, Int32Array.from([4, 1]));
  for (let mask = 1; mask < 32; mask++) {
    const history = [0, 1, 2, 3, 4].filter((m) => mask & (1 << m));
    const unliked = [0, 1, 2, 3, 4].filter((m) => !history.includes(m));
    for (const [rated, n] of [[history, 1], [history, 5], [[...history, ...unliked.slice(0, 1)], 2], [[...history, ...history], 3]] as const) {
      assert.deepEqual(rankFromHistory(inKernel, new Int32Array(0), history, rated, n), rankFromHistory(neighbours, new Int32Array(0), history, rated, n), `history ${history}`);
    }
  }
  const model = await train(await syntheticDir("small", 42));
  const kernelModel = { ...model.neighbours };
  await rankInKernel(kernelModel, model.popular);
  let compared = 0;
  for (const userId of model.users.userId.subarray(0, 300)) {
    const { rated, liked } = historyOf(model, userId);
    if (liked.length === 0) continue;
    for (const n of [1, 10, 100]) assert.deepEqual(rankFromHistory(kernelModel, model.popular, liked, rated, n), rankFromHistory(model.neighbours, model.popular, liked, rated, n), `userId ${userId}, n ${n}`);
    compared++;
  }
  assert.ok(compared > 200, `compared ${compared} users`);
});

test("popular order: likes descending, ties by movieId_enc, movies without likes left out", () => {
  const popular = popularOrder(Int32Array.from([3, 0, 5, 3, 1]));
  assert.deepEqual([...popular], [2, 0, 3, 4]);
  assert.deepEqual([...rankFromHistory(neighbours, popular, [], [2], 2).movies], [0, 3]);
  const empty = rankFromHistory(neighbours, popular, [], [0], 3);
  assert.equal(empty.fallback, "popular");
  assert.deepEqual([...empty.movies], [2, 3, 4]);
});

/** Counts, over every user of the model, recommended movies that the user rated in `dir`'s ratings.csv. */
async function seenRecommended(dir: string): Promise<{ users: number; seen: number }> {
  const modelDir = await mkdtemp(path.join(tmpdir(), "seen-"));
  try {
    await saveModel(modelDir, await train(dir));
    const model = await loadModel(modelDir);
    const rated = new Map<number, Set<number>>();
    for (const line of readFileSync(path.join(dir, "ratings.csv"), "utf8").trim().split("\n").slice(1)) {
      const [u, m] = line.split(",").map(Number);
      rated.set(u, (rated.get(u) ?? new Set()).add(m));
    }
    let seen = 0;
    for (const userId of model.users.userId) {
      for (const r of recommendForUser(model, userId, DEFAULTS.n).recommendations) seen += rated.get(userId)!.has(r.movieId) ? 1 : 0;
    }
    return { users: model.users.userId.length, seen };
  } finally {
    await rm(modelDir, { recursive: true, force: true });
  }
}

test("the saved model never recommends a movie the user rated, for every user (synthetic small set)", async () => {
  const { users, seen } = await seenRecommended(await syntheticDir("small"));
  assert.equal(users, PRESETS.small.users);
  assert.equal(seen, 0);
});

const shared = path.resolve("..", "shared", "data", "ml-latest-small");
test("the saved model never recommends a movie the user rated, for every user of ml-latest-small", { skip: !existsSync(shared) && "needs ../shared/data/ml-latest-small" }, async () => {
  const { users, seen } = await seenRecommended(shared);
  assert.equal(users, 610);
  assert.equal(seen, 0);
});
