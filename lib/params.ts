/** Defaults of every pipeline parameter (spec, "Steps"). */
export const DEFAULTS = {
  seed: 42,
  likeThreshold: 3,
  testFraction: 0.5,
  k: 100,
  n: 10,
  similarity: "cosine",
  shrink: 0,
  beta: 0.3,
  alpha: 1,
  model: "neighbours",
  factors: 64,
  regularization: 30,
  confidence: 3,
  iterations: 15,
  weight: 0.5,
} as const;

export const MODELS = ["neighbours", "als", "blend"] as const;
export type ModelName = (typeof MODELS)[number];

export const SIMILARITIES = ["cosine", "rp3beta"] as const;
export type SimilarityName = (typeof SIMILARITIES)[number];

export interface Params {
  seed: number;
  likeThreshold: number;
  testFraction: number;
  k: number;
  n: number;
  /** How neighbours are weighted: the spec's cosine (with `shrink`), or rp3beta (with `beta`). */
  similarity: SimilarityName;
  shrink: number;
  beta: number;
  /** rp3beta: transition probabilities raised to alpha before the walk (Paudel et al. 2017); 1 is plain rp3beta */
  alpha: number;
  /** What ranks: the neighbours (spec step 10), implicit ALS, or their blend (`weight` on ALS) */
  model: ModelName;
  /** ALS: factors, regularisation, confidence c = 1 + confidence * x (implicit's alpha), iterations */
  factors: number;
  regularization: number;
  confidence: number;
  iterations: number;
  weight: number;
  /** Keep this many users (spec step 3); undefined keeps all. */
  sampleUsers?: number;
  /** Evaluate this many users (spec step 12); undefined evaluates all. */
  evalUsers?: number;
}

/** Defaults overlaid with `options`, each value checked. */
export function resolveParams(options: Partial<Params> = {}): Params {
  const params: Params = { ...DEFAULTS, ...stripUndefined(options) };
  const { seed, likeThreshold, testFraction, k, n, similarity, shrink, beta, alpha, sampleUsers, evalUsers } = params;
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  if (!Number.isFinite(likeThreshold)) throw new RangeError(`likeThreshold must be a number, got ${likeThreshold}`);
  if (!(testFraction >= 0 && testFraction <= 1)) throw new RangeError(`testFraction must be in [0, 1], got ${testFraction}`);
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
  if (!SIMILARITIES.includes(similarity)) throw new RangeError(`similarity must be one of ${SIMILARITIES.join(", ")}, got ${similarity}`);
  if (!(shrink >= 0)) throw new RangeError(`shrink must be >= 0, got ${shrink}`);
  if (!(beta >= 0)) throw new RangeError(`beta must be >= 0, got ${beta}`);
  if (!(alpha > 0 && alpha < Infinity)) throw new RangeError(`alpha must be > 0, got ${alpha}`);
  const { model, factors, regularization, confidence, iterations, weight } = params;
  if (!MODELS.includes(model)) throw new RangeError(`model must be one of ${MODELS.join(", ")}, got ${model}`);
  if (!Number.isInteger(factors) || factors < 1 || factors > 1024) throw new RangeError(`factors must be an integer in [1, 1024], got ${factors}`);
  if (!(regularization > 0 && regularization < Infinity)) throw new RangeError(`regularization must be > 0, got ${regularization}`);
  if (!(confidence >= 0 && confidence < Infinity)) throw new RangeError(`confidence must be >= 0, got ${confidence}`);
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError(`iterations must be a positive integer, got ${iterations}`);
  if (!(weight >= 0 && weight <= 1)) throw new RangeError(`weight must be in [0, 1], got ${weight}`);
  for (const [name, value] of [["sampleUsers", sampleUsers], ["evalUsers", evalUsers]] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
  }
  return params;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
