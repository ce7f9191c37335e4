import { type Csr, normalizeRows } from "./csr";
import type { Factors } from "./als";
import { type EvaluationInput, evaluateRanking, evaluationThreads, evaluationUsers, type Method, type Metrics } from "./evaluate";
import { type Neighbours, truncateNeighbours } from "./neighbours";
import { type ModelName, type Params, resolveParams, type SimilarityName } from "./params";
import { popularOrder } from "./recommend";
import { splitRatings } from "./split";
import {
  assemble, evaluateTest, fitFactors, fitNeighbours, likesOf, prepare, type Prepared, refit, runOf, splitMatrices, type TrainedModel, trainFit, type TrainOptions, withAls,
} from "./train";

/**
 * The values `tune` tries: every similarity setting (cosine with every shrink, rp3beta with every beta
 * and alpha, asym and tfidf with every asym and shrink, bm25 with every k1 and b) with every k;
 * every ALS setting (factors x regularization x confidence x iterations; none when `factors` is
 * empty); then each blend `weight` of the best neighbours and the best ALS on validation.
 */
export interface Grid {
  similarity: SimilarityName[];
  shrink: number[];
  beta: number[];
  alpha: number[];
  asym: number[];
  k1: number[];
  b: number[];
  k: number[];
  factors: number[];
  regularization: number[];
  confidence: number[];
  iterations: number[];
  weight: number[];
}

export const DEFAULT_GRID: Grid = {
  similarity: ["cosine", "rp3beta", "asym", "tfidf", "bm25"],
  shrink: [0, 10, 50, 100],
  beta: [0, 0.2, 0.4, 0.6, 0.8],
  alpha: [0.5, 0.75, 1],
  asym: [0.5, 0.6, 0.7, 0.8],
  k1: [1.2, 5],
  b: [0.1, 0.25, 0.4],
  k: [10, 25, 50, 100, 200, 500],
  // ALS, from validation maps on ml-latest-small and ml-100k (docs/models.md): precision follows a ridge
  // where regularization grows with confidence, which this product covers; 128-192 factors and 5-60
  // iterations moved it by less than the noise, at 6x and up to 4x the time
  factors: [64],
  regularization: [50, 70, 100, 150],
  confidence: [5, 10, 20, 30, 50],
  iterations: [15],
  weight: [0.3, 0.5, 0.7, 0.85],
};

/**
 * The share of train ratings scored to choose: smaller than the test split, so the part fitted keeps
 * most of train and the choice carries over to a model fitted on all of it.
 */
export const DEFAULT_VALID_FRACTION = 0.3;

/**
 * One scored configuration; model "popularity" (similarity "popularity") is the baseline's row, for
 * reference. Fields that do not apply to the model are null; of a neighbours setting's, shrink, beta
 * and alpha are always set (0, 0, 1 where they do not apply), asym, k1 and b only where they do.
 */
export interface TuningRow {
  model: ModelName | "popularity";
  similarity: SimilarityName | "popularity" | null;
  shrink: number | null;
  beta: number | null;
  alpha: number | null;
  asym: number | null;
  k1: number | null;
  b: number | null;
  k: number | null;
  factors: number | null;
  regularization: number | null;
  confidence: number | null;
  iterations: number | null;
  weight: number | null;
  precision: number;
  recall: number;
  ndcg: number;
  hitrate: number;
  map: number;
  mrr: number;
}

type Setting = Pick<TuningRow, "model" | "similarity" | "shrink" | "beta" | "alpha" | "asym" | "k1" | "b" | "k" | "factors" | "regularization" | "confidence" | "iterations" | "weight">;

const NONE: Setting = {
  model: "neighbours", similarity: null, shrink: null, beta: null, alpha: null, asym: null, k1: null, b: null, k: null,
  factors: null, regularization: null, confidence: null, iterations: null, weight: null,
};

/** A similarity setting of the grid (TuningRow's fields). */
type SimilaritySetting = Pick<Params, "similarity" | "shrink" | "beta" | "alpha"> & Pick<TuningRow, "asym" | "k1" | "b">;

/** What the grid is scored on: train split again (spec, "Tuning"); test is never read. */
interface Validation {
  X_fit: Csr;
  X_fitMovies: Csr;
  X_valid: Csr;
  fitRated: Csr;
}

/** A validation split: the train ratings only, split with `word` ("valid", the spec's; "valid2" and on for more splits) in place of "split". */
export async function validationSplit(data: Pick<Prepared, "enc" | "userId" | "movieId" | "liked" | "isTest">, params: Params, validFraction: number, word = "valid"): Promise<Validation> {
  const rows: number[] = [];
  data.isTest.forEach((t, i) => t === 0 && rows.push(i));
  const pick = (a: Int32Array) => Int32Array.from(rows, (i) => a[i]);
  const userEnc = pick(data.enc.userEnc), movieEnc = pick(data.enc.movieEnc);
  const isValid = splitRatings({ userId: pick(data.userId), movieId: pick(data.movieId) }, validFraction, params.seed, word);
  const classes = Uint8Array.from(rows, (i, k) => data.liked[i] | (isValid[k] << 1));
  const m = await splitMatrices(userEnc, movieEnc, data.enc.userIds.length, data.enc.movieIds.length, classes, false);
  return { X_fit: m.keptLikes, X_fitMovies: normalizeRows(m.keptMovies), X_valid: m.heldLikes, fitRated: m.keptRated };
}

/** The similarity settings of a grid, each to be tried with every k. */
export function settingsOf(grid: Grid): SimilaritySetting[] {
  return grid.similarity.flatMap((similarity): SimilaritySetting[] => {
    const none = { similarity, shrink: 0, beta: 0, alpha: 1, asym: null, k1: null, b: null };
    if (similarity === "cosine") return grid.shrink.map((shrink) => ({ ...none, shrink }));
    if (similarity === "rp3beta") return grid.beta.flatMap((beta) => grid.alpha.map((alpha) => ({ ...none, beta, alpha })));
    if (similarity === "bm25") return grid.k1.flatMap((k1) => grid.b.map((b) => ({ ...none, k1, b })));
    return grid.asym.flatMap((asym) => grid.shrink.map((shrink) => ({ ...none, asym, shrink })));
  });
}

/** The ALS settings of a grid. */
export function alsSettingsOf(grid: Grid): Pick<Params, "factors" | "regularization" | "confidence" | "iterations">[] {
  return grid.factors.flatMap((factors) => grid.regularization.flatMap((regularization) => grid.confidence.flatMap((confidence) =>
    grid.iterations.map((iterations) => ({ factors, regularization, confidence, iterations })))));
}

/** The params of a neighbours or ALS setting (the others keep `params`'). */
export function paramsOfRow(params: Params, r: Setting): Params {
  const nb = r.similarity !== null && r.similarity !== "popularity"
    ? { similarity: r.similarity, shrink: r.shrink!, beta: r.beta!, alpha: r.alpha!, asym: r.asym ?? params.asym, k1: r.k1 ?? params.k1, b: r.b ?? params.b, k: r.k! } : {};
  const als = r.factors !== null ? { factors: r.factors, regularization: r.regularization!, confidence: r.confidence!, iterations: r.iterations! } : {};
  return resolveParams({ ...params, ...nb, ...als, model: r.model as ModelName, ...(r.weight !== null ? { weight: r.weight } : {}) });
}

/**
 * Scores every grid configuration on the validation split (on `validSplits` of them, each row the mean over them),
 * calling onRow as each is done, then trains the best by precision (the first of equals) on all of train and scores
 * test once; the saved model is then refit on all ratings (spec step 13) unless `refit` is false.
 */
export async function tune(
  dir: string, options: Partial<Params>, grid: Grid,
  trainOptions: TrainOptions & { onRow?: (row: TuningRow) => void; validFraction?: number; validSplits?: number } = {},
): Promise<{ model: TrainedModel; rows: TuningRow[]; best: TuningRow }> {
  const params = resolveParams(options);
  const { validSplits = 1, validFraction = DEFAULT_VALID_FRACTION } = trainOptions;
  if (!Number.isInteger(validSplits) || validSplits < 1) throw new RangeError(`validSplits must be a whole number of at least 1, got ${validSplits}`);
  const run = runOf(trainOptions);
  const data = await prepare(dir, params, run);
  const splits: { valid: Validation; users: Int32Array; popular: Int32Array }[] = [];
  for (let s = 1; s <= validSplits; s++) {
    const valid = await run.stage("validation", () => validationSplit(data, params, validFraction, s === 1 ? "valid" : `valid${s}`),
      (v) => `${v.X_fit.indices.length.toLocaleString("en-US")} likes to fit, ${v.X_valid.indices.length.toLocaleString("en-US")} to score`);
    splits.push({ valid, users: evaluationUsers(valid.X_fit, valid.X_valid, data.enc.userIds, params.evalUsers, params.seed), popular: popularOrder(likesOf(valid.X_fitMovies)) });
  }
  // per split: its neighbours, and ALS's factors (for ALS and the blend) and the blend's weight
  const inputs = (neighbours: Neighbours[], factors?: Factors[], weight?: number): EvaluationInput[] => splits.map(({ valid, popular }, s) => ({
    neighbours: neighbours[s], popular, X_train: valid.X_fit, trainRated: valid.fitRated, X_test: valid.X_valid, factors: factors?.[s], weight,
  }));
  const rows: TuningRow[] = [];
  const score = async (setting: Setting, evaluations: EvaluationInput[], method: Method) => {
    const ms: Metrics[] = [];
    for (const [s, evaluation] of evaluations.entries()) {
      const { users } = splits[s];
      ms.push(await evaluateRanking(evaluation, users, params.n, method, evaluationThreads(evaluation, users, params.n, [method], run.threads)));
    }
    const mean = (metric: keyof Metrics) => ms.reduce((sum, m) => sum + m[metric], 0) / ms.length;
    const r = { ...setting, precision: mean("precision"), recall: mean("recall"), ndcg: mean("ndcg"), hitrate: mean("hitrate"), map: mean("map"), mrr: mean("mrr") };
    rows.push(r);
    trainOptions.onRow?.(r);
    return r;
  };
  const bestOf = (of: TuningRow[]) => of.reduce((a, b) => (b.precision > a.precision ? b : a));
  const empty: Neighbours = { indptr: new Int32Array(data.enc.movieIds.length + 1), indices: new Int32Array(0), sims: new Float32Array(0) };
  const none = splits.map(() => empty);
  await score({ ...NONE, model: "popularity", similarity: "popularity" }, inputs(none), "popularity");

  const maxK = Math.max(...grid.k);
  const nbRows: TuningRow[] = [];
  let bestNb: { row: TuningRow; neighbours: Neighbours[] } | undefined;
  for (const setting of settingsOf(grid)) {
    const fitted: Neighbours[] = [];
    for (const { valid } of splits) fitted.push(await fitNeighbours(valid.X_fitMovies, paramsOfRow(params, { ...NONE, ...setting, k: maxK }), run, "tuning"));
    for (const k of grid.k) {
      const truncated = fitted.map((neighbours) => truncateNeighbours(neighbours, k));
      const row = await score({ ...NONE, ...setting, k }, inputs(truncated), "neighbours");
      nbRows.push(row);
      if (!bestNb || row.precision > bestNb.row.precision) bestNb = { row, neighbours: truncated };
    }
  }
  let bestAls: { row: TuningRow; factors: Factors[] } | undefined;
  for (const setting of alsSettingsOf(grid)) {
    const factors: Factors[] = [];
    for (const { valid } of splits) factors.push(await fitFactors(valid.X_fit, { ...params, ...setting }, run, "tuning"));
    const row = await score({ ...NONE, model: "als", ...setting }, inputs(none, factors), "als");
    if (!bestAls || row.precision > bestAls.row.precision) bestAls = { row, factors };
  }
  if (bestNb && bestAls) {
    const { row: nb, neighbours } = bestNb, { row: als, factors } = bestAls;
    for (const weight of grid.weight) {
      const setting: Setting = {
        model: "blend", similarity: nb.similarity, shrink: nb.shrink, beta: nb.beta, alpha: nb.alpha, asym: nb.asym, k1: nb.k1, b: nb.b, k: nb.k,
        factors: als.factors, regularization: als.regularization, confidence: als.confidence, iterations: als.iterations, weight,
      };
      await score(setting, inputs(neighbours, factors, weight), "blend");
    }
  }

  const best = bestOf(rows.slice(1));
  const chosen = paramsOfRow(params, best);
  // the blend's neighbours are the best neighbours row's; ALS alone keeps the best neighbours for similar movies
  const nbParams = best.model === "als" && nbRows.length > 0 ? paramsOfRow(params, bestOf(nbRows)) : chosen;
  const neighbours = await fitNeighbours(data.X_movies, nbParams, run);
  const factors = chosen.model === "neighbours" ? undefined : await fitFactors(data.X_train, chosen, run);
  const { metrics, baseline } = await evaluateTest(data, neighbours, chosen, run, factors);
  const saved = { ...nbParams, model: chosen.model, factors: chosen.factors, regularization: chosen.regularization,
    confidence: chosen.confidence, iterations: chosen.iterations, weight: chosen.weight };
  const served = trainOptions.refit === false ? trainFit(data, neighbours) : await refit(data, nbParams, run);
  const model = assemble(data, served, saved, {
    evaluated: neighbours, metrics, baseline, timings: run.timings, source: trainOptions.source ?? dir,
    tuning: rows.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== null)) as Record<string, number | string>),
    validation: { fraction: validFraction, splits: validSplits },
  });
  return { model: await withAls(model, saved, served, factors, run), rows, best };
}
