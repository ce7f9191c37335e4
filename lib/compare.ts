import type { Metrics } from "./evaluate";
import { DEFAULTS, type Params, RECOMMENDED, resolveParams } from "./params";
import { assemble, evaluateTest, fitNeighbours, prepare, refit, runOf, type TrainedModel, trainFit, type TrainOptions } from "./train";

/** A compared setting and its test metrics; popularity's row has no params. */
export interface ComparisonRow {
  name: "original" | "recommended" | "popularity";
  params: Params | null;
  metrics: Metrics;
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
  const cosine = await evaluateTest(data, await fitNeighbours(data.X_movies, original, run), original, run);
  const neighbours = await fitNeighbours(data.X_movies, recommended, run);
  const { metrics, baseline } = await evaluateTest(data, neighbours, recommended, run);
  const served = trainOptions.refit === false ? trainFit(data, neighbours) : await refit(data, recommended, run);
  const model = assemble(data, served, recommended, { evaluated: neighbours, metrics, baseline, timings: run.timings, source: trainOptions.source ?? dir });
  return {
    rows: [
      { name: "original", params: original, metrics: cosine.metrics },
      { name: "recommended", params: recommended, metrics },
      { name: "popularity", params: null, metrics: baseline },
    ],
    model,
  };
}
