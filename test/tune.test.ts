import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fnv1a32 } from "../lib/hash";
import { evaluateRanking, evaluationUsers } from "../lib/evaluate";
import { resolveParams } from "../lib/params";
import { popularOrder } from "../lib/recommend";
import { likesOf, prepare, runOf, train } from "../lib/train";
import { DEFAULT_VALID_FRACTION, tune, type Grid, type TuningRow, validationSplit } from "../lib/tune";
import { writeRandomMovieLens } from "./reference";

const grid: Grid = {
  similarity: ["cosine", "rp3beta", "asym", "tfidf", "bm25"], shrink: [0, 5], beta: [0.2], alpha: [0.5, 1], asym: [0.7], k1: [1.2], b: [0.25], k: [3, 10],
  factors: [4], regularization: [0.5, 5], confidence: [3], iterations: [4], weight: [0.3, 0.7],
};

/** Rewrites ratings.csv so every test rating (seed 42, testFraction 0.5) that was liked is not, and the reverse. */
function flipTestLikes(dir: string): void {
  const file = path.join(dir, "ratings.csv");
  const lines = readFileSync(file, "utf8").trim().split("\n");
  writeFileSync(file, [lines[0], ...lines.slice(1).map((line) => {
    const [u, m, r, t] = line.split(",");
    const isTest = fnv1a32(`42:split:${u}:${m}`) % 10000 < 5000;
    return isTest ? [u, m, Number(r) >= 3 ? "1.0" : "5.0", t].join(",") : line;
  })].join("\n") + "\n");
}

test("tuning never reads test ratings, on one validation split or two; test is scored once with the chosen configuration", async () => {
  const dir = writeRandomMovieLens(21);
  const original = await tune(dir, { n: 5 }, grid);
  // popularity, (2 cosine + 2 rp3beta + 2 asym + 2 tfidf + 1 bm25 settings) x 2 k, 2 ALS settings, 2 blend weights
  assert.equal(original.rows.length, 1 + 9 * 2 + 2 + 2);
  assert.equal(original.rows[0].similarity, "popularity");
  assert.deepEqual(original.rows.map((r) => r.model), ["popularity", ...new Array(18).fill("neighbours"), "als", "als", "blend", "blend"]);
  const setting = (r: TuningRow) => [r.similarity, r.shrink, r.beta, r.alpha, r.asym, r.k1, r.b];
  assert.deepEqual(original.rows.slice(1, 19).filter((r) => r.k === 3).map(setting), [
    ["cosine", 0, 0, 1, null, null, null], ["cosine", 5, 0, 1, null, null, null], ["rp3beta", 0, 0.2, 0.5, null, null, null], ["rp3beta", 0, 0.2, 1, null, null, null],
    ["asym", 0, 0, 1, 0.7, null, null], ["asym", 5, 0, 1, 0.7, null, null], ["tfidf", 0, 0, 1, 0.7, null, null], ["tfidf", 5, 0, 1, 0.7, null, null],
    ["bm25", 0, 0, 1, null, 1.2, 0.25],
  ]);
  // a blend row names its neighbours (the best neighbours row) and its ALS (the best ALS row)
  const bestOf = (model: string) => original.rows.filter((r) => r.model === model).reduce((a, b) => (b.precision > a.precision ? b : a));
  const [nb, als, blend] = [bestOf("neighbours"), bestOf("als"), original.rows.at(-1)!];
  assert.deepEqual([...setting(blend), blend.k], [...setting(nb), nb.k]);
  assert.deepEqual([blend.factors, blend.regularization, blend.confidence, blend.iterations, blend.weight], [als.factors, als.regularization, als.confidence, als.iterations, 0.7]);
  const best = original.rows.slice(1).reduce((a, b) => (b.precision > a.precision ? b : a));
  assert.deepEqual(original.best, best);
  const { params, tuning } = original.model.manifest;
  assert.equal(params.model, best.model);
  if (best.model !== "als") assert.deepEqual([params.similarity, params.k], [best.similarity, best.k]);
  if (best.model !== "neighbours") assert.deepEqual([params.factors, params.regularization], [best.factors, best.regularization]);
  assert.equal(tuning!.length, original.rows.length);
  assert.deepEqual(original.model.manifest.validation, { fraction: DEFAULT_VALID_FRACTION, splits: 1 });

  const alsOnly: Grid = { ...grid, similarity: [], weight: [] };
  const originalAls = await tune(dir, { n: 5 }, alsOnly, { threads: 1 });
  assert.equal(originalAls.best.model, "als");

  // On two validation splits ("valid", "valid2") each row is the mean of the two; the popularity row checked by hand
  const two = await tune(dir, { n: 5 }, grid, { validSplits: 2 });
  assert.deepEqual(two.rows.map(setting), original.rows.map(setting));
  assert.deepEqual(two.model.manifest.validation, { fraction: DEFAULT_VALID_FRACTION, splits: 2 });
  const base = resolveParams({ n: 5 }), data = await prepare(dir, base, runOf({}));
  const valid2 = await validationSplit(data, base, DEFAULT_VALID_FRACTION, "valid2");
  const empty = { indptr: new Int32Array(data.enc.movieIds.length + 1), indices: new Int32Array(0), sims: new Float32Array(0) };
  const popularity2 = await evaluateRanking({ neighbours: empty, popular: popularOrder(likesOf(valid2.X_fitMovies)), X_train: valid2.X_fit, trainRated: valid2.fitRated, X_test: valid2.X_valid },
    evaluationUsers(valid2.X_fit, valid2.X_valid, data.enc.userIds, undefined, base.seed), 5, "popularity", 1);
  assert.notEqual(popularity2.precision, original.rows[0].precision);
  assert.equal(two.rows[0].precision, (original.rows[0].precision + popularity2.precision) / 2);

  // Turn every test like into a dislike and back: no grid row (neighbours, ALS, blend) may move, the
  // test metrics of the chosen model must (of ALS too, when it is chosen).
  flipTestLikes(dir);
  const perturbed = await tune(dir, { n: 5 }, grid);
  assert.deepEqual(perturbed.rows, original.rows);
  assert.notDeepEqual(perturbed.model.manifest.metrics, original.model.manifest.metrics);
  assert.deepEqual((await tune(dir, { n: 5 }, grid, { validSplits: 2 })).rows, two.rows);
  for (const validSplits of [0, 1.5]) await assert.rejects(tune(dir, { n: 5 }, grid, { validSplits }), /validSplits must be a whole number of at least 1/);
  const perturbedAls = await tune(dir, { n: 5 }, alsOnly, { threads: 1 });
  assert.deepEqual(perturbedAls.rows, originalAls.rows);
  assert.notDeepEqual(perturbedAls.model.manifest.metrics, originalAls.model.manifest.metrics);
});

test("tune trains ALS and scores test with it when it is the only choice; train does the same for each model", async () => {
  const dir = writeRandomMovieLens(22);
  const als = await tune(dir, { n: 5 }, { ...grid, similarity: [], regularization: [5], weight: [] }, { threads: 1 });
  assert.deepEqual(als.rows.map((r) => r.model), ["popularity", "als"]);
  assert.equal(als.model.manifest.params.model, "als");
  assert.equal(als.model.als!.movies.length, als.model.movies.movieId.length * 4);
  const params = { n: 5, factors: 4, regularization: 5, confidence: 3, iterations: 4 };
  const trained = await train(dir, { ...params, model: "als" }, { threads: 1 });
  assert.deepEqual(trained.manifest.metrics, als.model.manifest.metrics);
  const neighbours = await train(dir, { ...params, similarity: "rp3beta", k: 10 }, { threads: 1 });
  const blend = await train(dir, { ...params, similarity: "rp3beta", k: 10, model: "blend", weight: 0.5 }, { threads: 1 });
  assert.equal(neighbours.als, undefined);
  assert.equal(blend.als!.weight, 0.5);
  assert.notDeepEqual(blend.manifest.metrics, neighbours.manifest.metrics);
  assert.notDeepEqual(blend.manifest.metrics, trained.manifest.metrics);
});

test("tune chooses among the weighted similarities alone, saves the choice's parameters, and scores test as train does", async () => {
  const dir = writeRandomMovieLens(23);
  const only = { ...grid, similarity: ["asym", "tfidf", "bm25"], shrink: [0, 5], asym: [0.6, 0.9], k1: [1.2, 5], b: [0.1, 0.4], factors: [], weight: [] } satisfies Grid;
  const { rows, best, model } = await tune(dir, { n: 5 }, only, { threads: 1, refit: false });
  // popularity, (4 asym + 4 tfidf + 4 bm25 settings) x 2 k
  assert.equal(rows.length, 1 + 12 * 2);
  const { params } = model.manifest;
  assert.deepEqual([params.model, params.similarity, params.k], ["neighbours", best.similarity, best.k]);
  const own = best.similarity === "bm25" ? { k1: best.k1!, b: best.b! } : { asym: best.asym!, shrink: best.shrink! };
  assert.deepEqual(best.similarity === "bm25" ? { k1: params.k1, b: params.b } : { asym: params.asym, shrink: params.shrink }, own);
  const trained = await train(dir, { n: 5, k: best.k!, similarity: best.similarity as "bm25", ...own }, { threads: 1, refit: false });
  assert.deepEqual(trained.manifest.metrics, model.manifest.metrics);
  assert.deepEqual(trained.neighbours, model.neighbours);
});
