import { type Csr, csrFromEntries, normalizeRows, transpose } from "./csr";
import { evaluateRanking, evaluationUsers, type Metrics } from "./evaluate";
import { type Neighbours, truncateNeighbours } from "./neighbours";
import { type Params, resolveParams, type SimilarityName } from "./params";
import { popularOrder } from "./recommend";
import { splitRatings } from "./split";
import {
  assemble, evaluateTest, fitNeighbours, likesOf, prepare, type Prepared, refit, runOf, type TrainedModel, trainFit, type TrainOptions,
} from "./train";

/** The values `tune` tries; every similarity setting is tried with every k. */
export interface Grid {
  similarity: SimilarityName[];
  shrink: number[];
  beta: number[];
  k: number[];
}

export const DEFAULT_GRID: Grid = {
  similarity: ["cosine", "rp3beta"],
  shrink: [0, 10, 50, 100],
  beta: [0, 0.2, 0.4, 0.6, 0.8],
  k: [10, 25, 50, 100, 200],
};

/**
 * The share of train ratings scored to choose: smaller than the test split, so the part fitted keeps
 * most of train and the choice carries over to a model fitted on all of it.
 */
export const DEFAULT_VALID_FRACTION = 0.3;

/** One scored configuration; `similarity` "popularity" is the baseline's row, for reference. */
export interface TuningRow {
  similarity: SimilarityName | "popularity";
  shrink: number | null;
  beta: number | null;
  k: number | null;
  precision: number;
  recall: number;
  ndcg: number;
  hitrate: number;
}

/** What the grid is scored on: train split again (spec, "Tuning"); test is never read. */
interface Validation {
  X_fit: Csr;
  X_fitMovies: Csr;
  X_valid: Csr;
  fitRated: Csr;
}

/** The validation split: the train ratings only, split with the word "valid" in place of "split". */
export function validationSplit(data: Pick<Prepared, "enc" | "userId" | "movieId" | "liked" | "isTest">, params: Params, validFraction: number): Validation {
  const rows: number[] = [];
  data.isTest.forEach((t, i) => t === 0 && rows.push(i));
  const pick = (a: Int32Array) => Int32Array.from(rows, (i) => a[i]);
  const userEnc = pick(data.enc.userEnc), movieEnc = pick(data.enc.movieEnc);
  const isValid = splitRatings({ userId: pick(data.userId), movieId: pick(data.movieId) }, validFraction, params.seed, "valid");
  const fitLike = new Uint8Array(rows.length), validLike = new Uint8Array(rows.length), fit = new Uint8Array(rows.length);
  rows.forEach((i, j) => {
    fit[j] = 1 - isValid[j];
    fitLike[j] = data.liked[i] & fit[j];
    validLike[j] = data.liked[i] & isValid[j];
  });
  const nUsers = data.enc.userIds.length, nMovies = data.enc.movieIds.length;
  const X_fit = csrFromEntries(userEnc, movieEnc, nUsers, nMovies, fitLike);
  return {
    X_fit,
    X_fitMovies: normalizeRows(transpose(X_fit)),
    X_valid: csrFromEntries(userEnc, movieEnc, nUsers, nMovies, validLike),
    fitRated: csrFromEntries(userEnc, movieEnc, nUsers, nMovies, fit),
  };
}

/** The similarity settings of a grid, each to be tried with every k. */
export function settingsOf(grid: Grid): Pick<Params, "similarity" | "shrink" | "beta">[] {
  return grid.similarity.flatMap((similarity): Pick<Params, "similarity" | "shrink" | "beta">[] => similarity === "cosine"
    ? grid.shrink.map((shrink) => ({ similarity, shrink, beta: 0 }))
    : grid.beta.map((beta) => ({ similarity, shrink: 0, beta })));
}

/**
 * Scores every grid configuration on the validation split, calling onRow as each is done, then
 * trains the best by precision (the first of equals) on all of train and scores test once; the
 * saved model is then refit on all ratings (spec step 13) unless `refit` is false.
 */
export async function tune(
  dir: string, options: Partial<Params>, grid: Grid, trainOptions: TrainOptions & { onRow?: (row: TuningRow) => void; validFraction?: number } = {},
): Promise<{ model: TrainedModel; rows: TuningRow[]; best: TuningRow }> {
  const params = resolveParams(options);
  const run = runOf(trainOptions);
  const data = await prepare(dir, params, run);
  const valid = await run.stage("validation", () => validationSplit(data, params, trainOptions.validFraction ?? DEFAULT_VALID_FRACTION),
    (v) => `${v.X_fit.indices.length.toLocaleString("en-US")} likes to fit, ${v.X_valid.indices.length.toLocaleString("en-US")} to score`);
  const users = evaluationUsers(valid.X_fit, valid.X_valid, data.enc.userIds, params.evalUsers, params.seed);
  const input = (neighbours: Neighbours) => ({
    neighbours, popular: popularOrder(likesOf(valid.X_fitMovies)), X_train: valid.X_fit, trainRated: valid.fitRated, X_test: valid.X_valid,
  });
  const row = (config: Pick<TuningRow, "similarity" | "shrink" | "beta" | "k">, m: Metrics): TuningRow => {
    const r = { ...config, precision: m.precision, recall: m.recall, ndcg: m.ndcg, hitrate: m.hitrate };
    trainOptions.onRow?.(r);
    return r;
  };
  const maxK = Math.max(...grid.k);
  const empty: Neighbours = { indptr: new Int32Array(data.enc.movieIds.length + 1), indices: new Int32Array(0), sims: new Float32Array(0) };
  const rows = [row({ similarity: "popularity", shrink: null, beta: null, k: null },
    await evaluateRanking(input(empty), users, params.n, "popularity", run.threads))];
  for (const setting of settingsOf(grid)) {
    const neighbours = await fitNeighbours(valid.X_fitMovies, { ...params, ...setting, k: maxK }, run, "tuning");
    for (const k of grid.k) {
      const metrics = await evaluateRanking(input(truncateNeighbours(neighbours, k)), users, params.n, "neighbours", run.threads);
      rows.push(row({ ...setting, k }, metrics));
    }
  }
  const best = rows.slice(1).reduce((a, b) => (b.precision > a.precision ? b : a));
  const chosen = resolveParams({ ...params, similarity: best.similarity as SimilarityName, shrink: best.shrink!, beta: best.beta!, k: best.k! });
  const neighbours = await fitNeighbours(data.X_movies, chosen, run);
  const { metrics, baseline } = await evaluateTest(data, neighbours, chosen, run);
  const served = trainOptions.refit === false ? trainFit(data, neighbours) : await refit(data, chosen, run);
  const model = assemble(data, served, chosen, {
    evaluated: neighbours, metrics, baseline, timings: run.timings, source: trainOptions.source ?? dir,
    tuning: rows.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== null)) as Record<string, number | string>),
  });
  return { model, rows, best };
}
