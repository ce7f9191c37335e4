import { test } from "node:test";
import assert from "node:assert/strict";
import { csrFromDense } from "../lib/csr";
import { evaluate, evaluateRanking, evaluateRankings, evaluationThreads, evaluationUsers } from "../lib/evaluate";
import { popularOrder, rankFromHistory } from "../lib/recommend";
import { nearestNeighbours } from "../lib/neighbours";
import { normalizeRows, rowIndices, transpose } from "../lib/csr";
import { random } from "../lib/synthetic";
import { randomLikes } from "./reference";
import type { Neighbours } from "../lib/neighbours";
import { fitAls, newFactorScratch, rankWithFactors } from "../lib/als";

test("every metric on a hand-worked example (n = 3)", () => {
  const X_test = csrFromDense([
    [0, 1, 1, 0, 0, 0, 0, 0], // relevant {1, 2}
    [1, 0, 0, 0, 0, 0, 0, 0], // relevant {0}
    [1, 0, 0, 1, 1, 1, 0, 0], // relevant {0, 3, 4, 5}
  ]);
  const top = [[1, 5, 2], [3, 4, 5], [0]]; // hits 2, 0, 1 (user 2 got a single recommendation)
  // movies 0-7 have neighbours except 6: 7 movies
  const neighbours: Neighbours = { indptr: Int32Array.from([0, 1, 2, 3, 4, 5, 6, 6, 7]), indices: new Int32Array(7), sims: new Float32Array(7) };
  const m = evaluate(Int32Array.from([0, 1, 2]), X_test, (u) => top[u], 3, neighbours);
  const ndcg0 = (1 + 1 / 2) / (1 + 1 / Math.log2(3)); // hits at ranks 1 and 3, ideal over 2 items
  const ndcg2 = 1 / (1 + 1 / Math.log2(3) + 1 / 2); // hit at rank 1, ideal over 3 items
  assert.equal(m.precision, (2 / 3 + 0 + 1 / 3) / 3);
  assert.equal(m.recall, (1 + 0 + 1 / 4) / 3);
  assert.equal(m.hitrate, 2 / 3);
  assert.equal(m.total_hits, 2);
  assert.equal(m.total_liked, 7);
  assert.equal(m.users, 3);
  assert.ok(Math.abs(m.ndcg - (ndcg0 + 0 + ndcg2) / 3) < 1e-15, `ndcg ${m.ndcg}`);
  assert.equal(m.coverage, 6 / 7);
  // AP@3: user 0 (1/1 + 2/3) / min(3, 2), user 2 (1/1) / min(3, 4); reciprocal ranks 1, 0, 1
  assert.ok(Math.abs(m.map - ((1 + 2 / 3) / 2 + 0 + 1 / 3) / 3) < 1e-15, `map ${m.map}`);
  assert.equal(m.mrr, 2 / 3);
  // a hit only at rank 2 has AP 1/2 / min(n, |relevant|) and reciprocal rank 1/2
  const late = evaluate(Int32Array.from([1]), X_test, () => [5, 0, 7], 3, neighbours, 4);
  assert.deepEqual([late.map, late.mrr, late.coverage], [0.5, 0.5, 3 / 4]);
});

test("evaluated users have a train like and a test like; evalUsers samples them by hash", () => {
  const X_train = csrFromDense([[1, 0], [0, 0], [1, 1], [0, 1], [1, 0], [1, 0], [1, 0], [1, 0], [1, 0], [1, 1]]);
  const X_test = csrFromDense([[0, 1], [1, 0], [0, 0], [1, 0], [0, 1], [0, 1], [0, 1], [0, 1], [0, 1], [1, 0]]);
  const userIds = Int32Array.from({ length: 10 }, (_, u) => u + 1);
  assert.deepEqual([...evaluationUsers(X_train, X_test, userIds, undefined, 42)], [0, 3, 4, 5, 6, 7, 8, 9]);
  // eligible ids {1, 4..10}; seed 7: the 4 smallest (fnv1a32("7:eval:<id>"), id) are 1, 4, 8, 9
  assert.deepEqual([...evaluationUsers(X_train, X_test, userIds, 4, 7)], [0, 3, 7, 8]);
});

test("evaluationThreads: one thread below 2^25 units of work (score updates, factor products), else all", () => {
  const users = new Int32Array(1000), likes = (n: number) => ({ indptr: new Int32Array(1), indices: new Int32Array(n), nRows: 0, nCols: 0, data: new Float64Array(0) });
  const lists = (movies: number, perList: number) => ({ indptr: new Int32Array(movies + 1), indices: new Int32Array(movies * perList), sims: new Float32Array(0) });
  const input = (X_train: number, perList: number, candidates = 0, factors = 0) =>
    ({ neighbours: lists(10, perList), X_train: likes(X_train), popular: new Int32Array(candidates), factors: { factors, users: new Float32Array(0), movies: new Float32Array(0) } });
  assert.equal(evaluationThreads(input(1 << 20, 31), users, 10, ["neighbours", "popularity"], 3), 1);
  assert.equal(evaluationThreads(input(1 << 20, 32), users, 10, ["neighbours"], 3), 3);
  assert.equal(evaluationThreads(input(0, 0, 1 << 10, 63), new Int32Array(1 << 9), 10, ["als"], 2), 1);
  assert.equal(evaluationThreads(input(0, 0, 1 << 10, 64), new Int32Array(1 << 9), 10, ["blend"], 2), 2);
});

test("evaluateRanking(s) on threads equal evaluate in this thread, for the model and the baseline, apart or in one pass", async () => {
  const rand = random(5);
  const X_train = csrFromDense(randomLikes(rand, 300, 120, 0.1));
  const X_test = csrFromDense(randomLikes(rand, 300, 120, 0.1));
  const trainRated = X_train;
  const neighbours = await nearestNeighbours(normalizeRows(transpose(X_train)), 15);
  const likes = Int32Array.from({ length: 120 }, (_, m) => X_train.indices.filter((j) => j === m).length);
  const popular = popularOrder(likes);
  const users = evaluationUsers(X_train, X_test, Int32Array.from({ length: 300 }, (_, u) => u + 1), undefined, 42);
  const input = { neighbours, popular, X_train, trainRated, X_test };
  const byHand = evaluate(users, X_test, (u) => rankFromHistory(neighbours, popular, rowIndices(X_train, u), rowIndices(trainRated, u), 10).movies, 10, neighbours);
  const baseline = evaluate(users, X_test, (u) => rankFromHistory(neighbours, popular, [], rowIndices(trainRated, u), 10).movies, 10, neighbours);
  const factors = await fitAls(X_train, { factors: 6, regularization: 0.5, confidence: 5, iterations: 3, seed: 1 });
  const s = newFactorScratch(120, popular.length);
  const als = evaluate(users, X_test, (u) => rankWithFactors(factors, u, popular, rowIndices(trainRated, u), 10, s).movies, 10, neighbours, popular.length);
  const blend = evaluate(users, X_test, (u) => rankWithFactors(factors, u, popular, rowIndices(trainRated, u), 10, s,
    { neighbours, history: rowIndices(X_train, u), weight: 0.4 }).movies, 10, neighbours, popular.length);
  for (const threads of [1, 2, 3]) {
    assert.deepEqual(await evaluateRanking(input, users, 10, "neighbours", threads), byHand);
    assert.deepEqual(await evaluateRanking(input, users, 10, "popularity", threads), baseline);
    assert.deepEqual(await evaluateRanking({ ...input, factors }, users, 10, "als", threads), als);
    assert.deepEqual(await evaluateRanking({ ...input, factors, weight: 0.4 }, users, 10, "blend", threads), blend);
    assert.deepEqual(await evaluateRankings(input, users, 10, ["neighbours", "popularity"], threads), [byHand, baseline]);
    assert.deepEqual(await evaluateRankings({ ...input, factors, weight: 0.4 }, users, 10, ["blend", "popularity"], threads), [blend, baseline]);
  }
  assert.ok(byHand.users > 200 && byHand.precision > 0);
  assert.ok(als.precision > 0 && blend.precision > 0);
  assert.notDeepEqual(als, blend);
});
