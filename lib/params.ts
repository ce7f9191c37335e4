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
  asym: 0.5,
  k1: 1.2,
  b: 0.75,
  model: "neighbours",
  factors: 64,
  regularization: 30,
  confidence: 3,
  iterations: 15,
  weight: 0.5,
} as const;

export const MODELS = ["neighbours", "als", "blend"] as const;
export type ModelName = (typeof MODELS)[number];

export const SIMILARITIES = ["cosine", "rp3beta", "asym", "tfidf", "bm25"] as const;
export type SimilarityName = (typeof SIMILARITIES)[number];

export interface Params {
  seed: number;
  likeThreshold: number;
  testFraction: number;
  k: number;
  n: number;
  /**
   * How neighbours are weighted (docs/models.md, "Neighbour similarities"): the spec's cosine (with `shrink`),
   * rp3beta (`beta`, `alpha`), asymmetric cosine (`asym`, `shrink`), TF-IDF asymmetric cosine (the same), or BM25 (`k1`, `b`).
   */
  similarity: SimilarityName;
  shrink: number;
  beta: number;
  /** rp3beta: transition probabilities raised to alpha before the walk (Paudel et al. 2017); 1 is plain rp3beta */
  alpha: number;
  /** asym and tfidf: c / (n_m ^ asym * n_j ^ (1 - asym)); 0.5 is the cosine */
  asym: number;
  /** bm25: term saturation k1 and length normalisation b (implicit's K1, B) */
  k1: number;
  b: number;
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

/** A parameter's allowed values: an integer or a number in min..max (open at both ends when `open`). */
export interface Limit {
  min: number;
  max: number;
  integer?: boolean;
  open?: boolean;
}

/** The range of every numeric parameter, checked by resolveParams and by the CLI before any work. */
export const LIMITS = {
  seed: { min: 0, max: 2 ** 32 - 1, integer: true },
  likeThreshold: { min: 0, max: 5 }, // MovieLens ratings are 0.5..5
  testFraction: { min: 0, max: 1, open: true }, // 0 tests nothing, 1 trains on nothing
  k: { min: 1, max: 1000, integer: true },
  n: { min: 1, max: 1000, integer: true },
  shrink: { min: 0, max: 1e6 },
  beta: { min: 0, max: 1 },
  sampleUsers: { min: 1, max: 2 ** 31 - 1, integer: true },
  evalUsers: { min: 1, max: 2 ** 31 - 1, integer: true },
  alpha: { min: 0, max: 10, open: true },
  asym: { min: 0, max: 1 },
  k1: { min: 0, max: 1e6 },
  b: { min: 0, max: 1 },
  factors: { min: 1, max: 1024, integer: true },
  regularization: { min: 0, max: 1e6, open: true },
  confidence: { min: 0, max: 1e6 },
  iterations: { min: 1, max: 1000, integer: true },
  weight: { min: 0, max: 1 },
} as const satisfies Record<string, Limit>;

/** What `value` breaks ("must be an integer in 1..1000"), or null when it is within `limit`. */
export function outOfRange(value: number, limit: Limit): string | null {
  const { min, max, integer, open } = limit;
  const within = open ? value > min && value < max : value >= min && value <= max;
  if (Number.isFinite(value) && within && (!integer || Number.isInteger(value))) return null;
  return `must be ${integer ? "an integer" : "a number"} in ${open ? `(${min}, ${max})` : integer ? `${min}..${max}` : `[${min}, ${max}]`}`;
}

/** Defaults overlaid with `options`, each value checked. */
export function resolveParams(options: Partial<Params> = {}): Params {
  const params: Params = { ...DEFAULTS, ...stripUndefined(options) };
  for (const [name, limit] of Object.entries(LIMITS)) {
    const value = params[name as keyof typeof LIMITS];
    const broken = value === undefined ? null : outOfRange(value, limit);
    if (broken) throw new RangeError(`${name} ${broken}, got ${value}`);
  }
  if (!SIMILARITIES.includes(params.similarity)) throw new RangeError(`similarity must be one of ${SIMILARITIES.join(", ")}, got ${params.similarity}`);
  if (!MODELS.includes(params.model)) throw new RangeError(`model must be one of ${MODELS.join(", ")}, got ${params.model}`);
  return params;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The setting the project recommends: what `tune` chooses on ml-latest-small and ml-100k (README,
 * "Beating popularity"). `compare` (npm start) sets it beside the spec's cosine and saves it.
 */
export const RECOMMENDED: Pick<Params, "similarity" | "shrink" | "beta" | "k"> = { similarity: "rp3beta", shrink: 0, beta: 0.2, k: 200 };

/** The similarity's own parameters as name=value words: ["shrink=0"], ["beta=0.2", "alpha=1"], ["asym=0.3", "shrink=0"], ["k1=1.2", "b=0.75"]. */
export function similarityParams(p: Pick<Params, "similarity" | "shrink" | "beta"> & Partial<Pick<Params, "alpha" | "asym" | "k1" | "b">>): string[] {
  const { similarity, shrink, beta, alpha = DEFAULTS.alpha, asym = DEFAULTS.asym, k1 = DEFAULTS.k1, b = DEFAULTS.b } = p;
  if (similarity === "cosine") return [`shrink=${shrink}`];
  if (similarity === "rp3beta") return [`beta=${beta}`, `alpha=${alpha}`];
  return similarity === "bm25" ? [`k1=${k1}`, `b=${b}`] : [`asym=${asym}`, `shrink=${shrink}`];
}

/** "rp3beta beta=0.2 k=200": a similarity setting in one phrase (rp3beta's alpha when it is not 1). */
export const describeSetting = (p: Pick<Params, "similarity" | "shrink" | "beta" | "k"> & Partial<Pick<Params, "alpha" | "asym" | "k1" | "b">>) =>
  [p.similarity, ...similarityParams(p).filter((w) => w !== "alpha=1"), `k=${p.k}`].join(" ");

/** The model in one phrase: its neighbours setting, ALS's, or the blend of both. */
export function describeModel(p: Params): string {
  const als = `ALS factors=${p.factors} regularization=${p.regularization} confidence=${p.confidence} iterations=${p.iterations}`;
  return p.model === "neighbours" ? describeSetting(p) : p.model === "als" ? als : `blend of ${describeSetting(p)} and ${als}, weight ${p.weight}`;
}
