import type { Metrics } from "./evaluate";
import type { Neighbours } from "./neighbours";
import { DEFAULTS, type Params, RECOMMENDED, resolveParams } from "./params";
import {
  assemble, evaluateTest, fitFactors, fitNeighbours, type Prepared, prepare, refit, type Run, runOf, type TrainedModel, trainFit, type TrainOptions,
} from "./train";

/** A compared setting and its test metrics; popularity's row has no params. */
export interface ComparisonRow {
  name: string;
  params: Params | null;
  metrics: Metrics;
}

/**
 * Each setting fitted on train (its neighbours, and ALS's factors for ALS and the blend) and scored on
 * test, on one split and the same users, with the popularity baseline's row last; and each one's neighbours.
 */
export async function compareOnTest(data: Prepared, settings: { name: string; params: Params }[], run: Run): Promise<{ rows: ComparisonRow[]; fitted: Neighbours[] }> {
  const rows: ComparisonRow[] = [], fitted: Neighbours[] = [];
  let baseline: Metrics | undefined;
  for (const { name, params } of settings) {
    const neighbours = await fitNeighbours(data.X_movies, params, run);
    const factors = params.model === "neighbours" ? undefined : await fitFactors(data.X_train, params, run);
    const scored = await evaluateTest(data, neighbours, params, run, factors);
    rows.push({ name, params, metrics: scored.metrics });
    fitted.push(neighbours);
    baseline = scored.baseline;
  }
  rows.push({ name: "popularity", params: null, metrics: baseline! });
  return { rows, fitted };
}

/**
 * The spec's cosine (the original's setting), the recommended setting (RECOMMENDED) and the popularity
 * baseline, on one split and the same test users; the model to save is the recommended one, refit on
 * all ratings (spec step 13) unless `refit` is false.
 */
export async function compare(dir: string, options: Partial<Params> = {}, trainOptions: TrainOptions = {}): Promise<{ rows: ComparisonRow[]; model: TrainedModel }> {
  const original = resolveParams({ ...options, similarity: DEFAULTS.similarity, shrink: DEFAULTS.shrink, k: DEFAULTS.k });
  const recommended = resolveParams({ ...options, ...RECOMMENDED });
  const run = runOf(trainOptions);
  const data = await prepare(dir, original, run);
  const { rows, fitted } = await compareOnTest(data, [{ name: "original", params: original }, { name: "recommended", params: recommended }], run);
  const served = trainOptions.refit === false ? trainFit(data, fitted[1]) : await refit(data, recommended, run);
  const model = assemble(data, served, recommended, { evaluated: fitted[1], metrics: rows[1].metrics, baseline: rows[2].metrics, timings: run.timings, source: trainOptions.source ?? dir });
  return { rows, model };
}
