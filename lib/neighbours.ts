import type { Csr } from "./csr";
import type { Progress } from "./ingest";
import { DEFAULTS, type Params, type SimilarityName } from "./params";
import { instantiate, type Kernel, kernelModule, sharedMemory, type WasmMemory, type WasmModule } from "./kernel";
import { selectBest, topK } from "./topk";
import { defaultThreads, runTask, shared, sharedArray } from "./workers";

/** Each movie's neighbours (spec step 9): movie m's are indices/sims[indptr[m]..indptr[m+1]], best first. */
export interface Neighbours {
  indptr: Int32Array;
  indices: Int32Array;
  sims: Float32Array;
}

/** How the weight of neighbour j for movie m is computed (spec step 9 and "Beyond the original"). */
export interface NeighboursOptions extends Partial<Similarity> {
  /** Worker threads; the result is the same for any count. Default: the cores available. */
  threads?: number;
  onProgress?: Progress;
}

export const neighboursOf = (nb: Neighbours, m: number) => ({
  indices: nb.indices.subarray(nb.indptr[m], nb.indptr[m + 1]),
  sims: nb.sims.subarray(nb.indptr[m], nb.indptr[m + 1]),
});

/** A similarity and its parameters. */
type Similarity = Pick<Params, "similarity" | "shrink" | "beta" | "alpha" | "asym" | "k1" | "b">;

/**
 * Top-k neighbours of each movie by the similarity (default: the spec's cosine), weights > 0 only,
 * ties by movieId_enc, self excluded by index, kept weights rounded to float32 (spec step 9).
 * X_movies is movies x users and only its pattern is read: for cosine, c / (sqrt(n_m * n_j) + shrink)
 * from the co-like count c in double; for rp3beta, (1 / n_m) ^ alpha * (sum of (1 / d_u) ^ alpha) / n_j ^ beta;
 * asym, tfidf and bm25 as docs/models.md ("Neighbour similarities") writes them.
 */
export async function nearestNeighbours(X_movies: Csr, k: number, options: NeighboursOptions = {}): Promise<Neighbours> {
  return (await fit([X_movies], k, options))[0];
}

/**
 * nearestNeighbours of X_train and of X_all (X_train's likes and more, as the refit of spec step 13) in
 * one pass over X_all's likes: a pair of train likes counts for both, any other pair for X_all only.
 */
export function nearestNeighboursBoth(X_train: Csr, X_all: Csr, k: number, options: NeighboursOptions = {}): Promise<Neighbours[]> {
  return fit([X_train, X_all], k, options);
}

/** Counts of co-likes share their pass; sums of user weights, which differ between fits, take one pass each. */
async function fit(fits: Csr[], k: number, options: NeighboursOptions): Promise<Neighbours[]> {
  const {
    similarity = DEFAULTS.similarity, shrink = DEFAULTS.shrink, beta = DEFAULTS.beta, alpha = DEFAULTS.alpha, asym = DEFAULTS.asym, k1 = DEFAULTS.k1, b = DEFAULTS.b,
    threads = defaultThreads(), onProgress,
  } = options;
  const weightingOf = (X: Csr) => weighting(X, { similarity, shrink, beta, alpha, asym, k1, b });
  const first = weightingOf(fits[0]);
  if (first.userWeight && fits.length > 1) return [...await fit(fits.slice(0, 1), k, options), ...await fit(fits.slice(1), k, options)];
  const ws = [first, ...fits.slice(1).map(weightingOf)];
  const nMovies = fits[0].nRows;
  const s = await prepare(ws, Math.min(k, Math.max(1, nMovies - 1)), threads);
  const progress = onProgress && { counter: s.done, total: s.totalWork, report: onProgress };
  await runTask("neighbours.count", countTask, s, threads, progress);
  await runTask("neighbours.merge", mergeTask, s, threads);
  onProgress?.(s.totalWork, s.totalWork);
  return s.fits.map((f) => compact(f.out, nMovies, s.k));
}

/** Each movie's first k neighbours: the top k of a longer list, as the order is total. */
export function truncateNeighbours(nb: Neighbours, k: number): Neighbours {
  const nMovies = nb.indptr.length - 1;
  const indptr = new Int32Array(nMovies + 1);
  for (let m = 0; m < nMovies; m++) indptr[m + 1] = indptr[m] + Math.min(k, nb.indptr[m + 1] - nb.indptr[m]);
  const indices = new Int32Array(indptr[nMovies]), sims = new Float32Array(indptr[nMovies]);
  for (let m = 0; m < nMovies; m++) {
    const from = nb.indptr[m], count = indptr[m + 1] - indptr[m];
    indices.set(nb.indices.subarray(from, from + count), indptr[m]);
    sims.set(nb.sims.subarray(from, from + count), indptr[m]);
  }
  return { indptr, indices, sims };
}

/**
 * A similarity as the engine computes it. For movies x and y, v is the sum of userWeight over the users
 * who liked both, in ascending userId_enc (without userWeight: their count); the exact weight of y for x
 * is weight(v, x, y) below, and v * a[x] * b[y] is it up to rounding or above it (shrink only lowers it).
 * Per-movie arrays are by movieId_enc.
 */
interface Weighting {
  similarity: SimilarityName;
  shrink: number;
  /** the likes to read: X_movies without the users of weight 0, who add nothing to any sum */
  X_movies: Csr;
  userWeight?: Float64Array;
  a: Float64Array;
  b: Float64Array;
  /** the exact weight's terms: v / (sqrt(p[x] * q[y]) + shrink) (cosine, asym, tfidf), a[x] * v / q[y] (rp3beta), a[x] * a[y] * v (bm25) */
  p: Float64Array;
  q: Float64Array;
}

/** The weights of a similarity on X_movies (movies x users): its users', and its movies' terms. */
function weighting(X_movies: Csr, o: Similarity): Weighting {
  const { similarity, shrink } = o;
  const nMovies = X_movies.nRows;
  const n = Float64Array.from({ length: nMovies }, (_, m) => X_movies.indptr[m + 1] - X_movies.indptr[m]);
  const d = new Float64Array(X_movies.nCols);
  for (const u of X_movies.indices) d[u]++;
  const perMovie = (f: (m: number) => number) => Float64Array.from(n, (_, m) => f(m));
  if (similarity === "cosine") {
    const a = perMovie((m) => 1 / Math.sqrt(n[m]));
    return { similarity, shrink, X_movies, a, b: a, p: n, q: n };
  }
  if (similarity === "rp3beta") {
    // Math.pow(x, 1) is x: alpha 1 gives the plain transition probabilities, bit for bit
    const a = perMovie((m) => Math.pow(1 / n[m], o.alpha)), q = perMovie((m) => Math.pow(n[m], o.beta));
    return { similarity, shrink, X_movies, userWeight: d.map((du) => Math.pow(1 / du, o.alpha)), a, b: q.map((x) => 1 / x), p: a, q };
  }
  if (similarity === "asym") return asymmetric(similarity, shrink, X_movies, new Float64Array(d.length).fill(1), n, o.asym);
  // implicit's idf on the movies x users matrix, squared as both movies carry it
  const idf2 = d.map((du) => {
    const idf = Math.log(nMovies) - Math.log1p(du);
    return idf * idf;
  });
  const kept = withoutUsers(X_movies, idf2);
  if (similarity === "tfidf") {
    const norm2 = new Float64Array(nMovies);
    for (let m = 0; m < nMovies; m++) for (let p = kept.indptr[m]; p < kept.indptr[m + 1]; p++) norm2[m] += idf2[kept.indices[p]];
    return asymmetric(similarity, shrink, kept, idf2, norm2, o.asym);
  }
  // bm25: implicit's bm25_weight, row m's likes scaled by f_m, from n_m and the mean likes of all movies
  const mean = X_movies.indices.length / nMovies;
  const f = perMovie((m) => (o.k1 + 1) / (o.k1 * (1 - o.b + (o.b * n[m]) / mean) + 1));
  return { similarity, shrink: 0, X_movies: kept, userWeight: idf2, a: f, b: f, p: f, q: f };
}

/**
 * The asymmetric cosine of weighted likes: v / (sqrt(norm2_x ^ (2 asym) * norm2_y ^ (2 - 2 asym)) + shrink),
 * norm2 the squared norms; at asym 0.5 the powers are 1, so it is the cosine bit for bit.
 */
function asymmetric(similarity: SimilarityName, shrink: number, X_movies: Csr, userWeight: Float64Array, norm2: Float64Array, asym: number): Weighting {
  const p = norm2.map((x) => Math.pow(x, 2 * asym)), q = norm2.map((x) => Math.pow(x, 2 * (1 - asym)));
  return { similarity, shrink, X_movies, userWeight, a: p.map((x) => 1 / Math.sqrt(x)), b: q.map((x) => 1 / Math.sqrt(x)), p, q };
}

/** X_movies without the likes of users whose weight is 0 (the kernel lists a movie when its sum first leaves 0). */
function withoutUsers(X_movies: Csr, userWeight: Float64Array): Csr {
  if (X_movies.indices.every((u) => userWeight[u] !== 0)) return X_movies;
  const indptr = new Int32Array(X_movies.nRows + 1), indices: number[] = [];
  for (let m = 0; m < X_movies.nRows; m++) {
    for (let p = X_movies.indptr[m]; p < X_movies.indptr[m + 1]; p++) if (userWeight[X_movies.indices[p]] !== 0) indices.push(X_movies.indices[p]);
    indptr[m + 1] = indices.length;
  }
  return { ...X_movies, indptr, indices: Int32Array.from(indices), data: new Float64Array(indices.length).fill(1) };
}

/**
 * Everything the threads share. Movies are relabelled (r) by their likes in the last fit, so that hot
 * counters sit together; the last fit's likes hold every other fit's.
 */
interface Shared {
  k: number;
  nMovies: number;
  similarity: SimilarityName;
  /** v sums user weights (else it counts co-likes): a single fit */
  weighted: boolean;
  shrink: number;
  /** the kernel, and the memory holding the arrays it reads (views below, addresses their byteOffset) */
  module: WasmModule;
  memory: WasmMemory;
  /** r -> movieId_enc, and back */
  perm: Int32Array;
  rank: Int32Array;
  /**
   * Each user's row in uIdx: its likes of the first fit ("train"), then the others ("test"), each part in
   * ascending r, from addresses starts[u] and mids[u]. Movie r's likes are entries ePtr[r]..ePtr[r+1] of
   * 3 i32 (its train likes first, up to eMid[r]): the user, and where its train and test parts reach r.
   */
  uIdx: Int32Array;
  starts: Int32Array;
  mids: Int32Array;
  entries: Int32Array;
  ePtr: Int32Array;
  eMid: Int32Array;
  /** each user's weight, when weighted (Weighting's userWeight) */
  invD: Float64Array;
  /** the pairs movie r counts; its likes in the last fit */
  increments: Int32Array;
  likes: Int32Array;
  never: Float32Array;
  next: Int32Array;
  done: Int32Array;
  totalWork: number;
  /** each thread's counts (or sums) against the current movie, the movies it touched, and the pairs that pass */
  scratch: { acc: Int32Array | Float64Array; touched: Int32Array; pass: Int32Array; passV: Float64Array; pass2: Int32Array; passV2: Float64Array }[];
  fits: FitState[];
}

/** One fit's weights, bars and results. */
interface FitState {
  /**
   * the terms p, q of movie r's exact weight, and factors a, b with weight(x -> y) ~ acc * a[x] * b[y]
   * (Weighting; a and b 0 for movies without likes in this fit)
   */
  p: Float64Array;
  q: Float64Array;
  a: Float64Array;
  b: Float64Array;
  /** b and thr in float32 (thr at least FLOAT32_MIN), padded to a multiple of 4, for the kernel */
  b32: Float32Array;
  thr32: Float32Array;
  buffers: Buffers[];
  /**
   * Per movie, a weight no greater than its final k-th best (-Infinity at first): any thread's k-th best
   * kept so far qualifies, so all threads share it and offers below it are dropped.
   */
  thr: Float64Array;
  out: { ids: Int32Array; sims: Float32Array; count: Int32Array };
}

/** Per thread and movie, a buffer of 2k candidate (movieId_enc, weight); when full, its k best are kept. */
interface Buffers {
  ids: Int32Array;
  vals: Float64Array;
  size: Int32Array;
}

const WORK_UNIT = 1024;
// Two fits' counts share an i32, the last fit's in the low 16 bits, when no count can exceed 65535.
const PACKED = 0xffff;

/** The shared state for fitting each weighting's likes; the last one's likes hold every other's. */
async function prepare(ws: Weighting[], k: number, threads: number): Promise<Shared> {
  const fits = ws.map((w) => w.X_movies), X = fits[fits.length - 1];
  const nMovies = X.nRows, nUsers = X.nCols, nnz = X.indices.length;
  const weighted = ws[0].userWeight !== undefined;
  const likes = Float64Array.from({ length: nMovies }, (_, m) => X.indptr[m + 1] - X.indptr[m]);
  const perm = Int32Array.from(likes.keys()).sort((x, y) => likes[y] - likes[x] || x - y);
  const rank = new Int32Array(nMovies);
  perm.forEach((m, r) => (rank[m] = r));
  const isTrain = trainFlags(fits);

  const padded = nMovies + 4, nFits = fits.length;
  const { memory, common, threads: scratch } = sharedMemory({
    entries: ["i32", 3 * nnz], uIdx: ["i32", nnz], starts: ["i32", nUsers], mids: ["i32", nUsers], invD: ["f64", weighted ? nUsers : 0],
    a: ["f64", nFits * nMovies], b: ["f64", nFits * nMovies], b32: ["f32", nFits * padded], thr32: ["f32", nFits * padded], never: ["f32", padded],
  }, {
    acc: [weighted ? "f64" : "i32", padded], touched: ["i32", nMovies], pass: ["i32", nMovies], passV: ["f64", nMovies],
    pass2: ["i32", nFits > 1 ? nMovies : 0], passV2: ["f64", nFits > 1 ? nMovies : 0],
  }, threads);
  const { entries, uIdx, starts, mids, invD, never } = common;

  // each user's row: its train likes, then the others
  const uPtr = new Int32Array(nUsers + 1), dTrain = new Int32Array(nUsers);
  for (let q = 0; q < nnz; q++) {
    uPtr[X.indices[q] + 1]++;
    dTrain[X.indices[q]] += isTrain[q];
  }
  for (let u = 0; u < nUsers; u++) uPtr[u + 1] += uPtr[u];
  const base = uIdx.byteOffset;
  // per user, where its next test like goes, then its next train like (indexed by the train flag)
  const fill = new Int32Array(2 * nUsers);
  for (let u = 0; u < nUsers; u++) {
    fill[2 * u] = uPtr[u] + dTrain[u];
    fill[2 * u + 1] = uPtr[u];
    starts[u] = base + 4 * uPtr[u];
    mids[u] = base + 4 * fill[2 * u];
  }
  const ePtr = new Int32Array(nMovies + 1), eMid = new Int32Array(nMovies), increments = new Int32Array(nMovies);
  const next = new Int32Array(2);
  let totalWork = 0;
  for (let r = 0; r < nMovies; r++) {
    const m = perm[r];
    ePtr[r + 1] = ePtr[r] + X.indptr[m + 1] - X.indptr[m];
    next[1] = ePtr[r];
    next[0] = eMid[r] = ePtr[r] + fits[0].indptr[m + 1] - fits[0].indptr[m];
    let pairs = 0;
    for (let q = X.indptr[m]; q < X.indptr[m + 1]; q++) {
      const u = X.indices[q], train = isTrain[q], p = next[train]++;
      const inTrain = fill[2 * u + 1], inTest = fill[2 * u];
      entries[3 * p] = u;
      entries[3 * p + 1] = base + 4 * inTrain;
      entries[3 * p + 2] = base + 4 * inTest;
      pairs += inTrain - uPtr[u] + inTest - uPtr[u] - dTrain[u];
      uIdx[fill[2 * u + train]++] = r;
    }
    increments[r] = pairs;
    totalWork += pairs;
  }

  if (ws[0].userWeight) invD.set(ws[0].userWeight);
  const states = ws.map((w, f) => fitState(w, perm, {
    a: common.a.subarray(f * nMovies, (f + 1) * nMovies), b: common.b.subarray(f * nMovies, (f + 1) * nMovies),
    b32: common.b32.subarray(f * padded, (f + 1) * padded), thr32: common.thr32.subarray(f * padded, (f + 1) * padded),
  }, threads, k));
  never.fill(Infinity);
  return {
    k, nMovies, similarity: ws[0].similarity, weighted, shrink: ws[0].shrink, module: await kernelModule(), memory,
    perm: shared(perm), rank: shared(rank), uIdx, starts, mids, entries, invD, ePtr: shared(ePtr), eMid: shared(eMid),
    increments: shared(increments), likes: shared(Int32Array.from(perm, (m) => likes[m])), never,
    next: sharedArray(Int32Array, 1), done: sharedArray(Int32Array, 1), totalWork: Math.ceil(totalWork / WORK_UNIT),
    scratch, fits: states,
  };
}

/** Per like of the last fit (its CSR order), 1 when the first fit has it too; all ones for a single fit. */
function trainFlags(fits: Csr[]): Uint8Array {
  const X = fits[fits.length - 1], T = fits[0];
  const flags = new Uint8Array(X.indices.length);
  if (fits.length === 1) return flags.fill(1);
  if (T.nRows !== X.nRows || T.nCols !== X.nCols) throw new RangeError(`X_train is ${T.nRows} x ${T.nCols}, X_all ${X.nRows} x ${X.nCols}: expected the same shape`);
  const stamp = new Int32Array(X.nCols).fill(-1);
  for (let m = 0; m < X.nRows; m++) {
    for (let q = T.indptr[m]; q < T.indptr[m + 1]; q++) stamp[T.indices[q]] = m;
    let found = 0;
    for (let q = X.indptr[m]; q < X.indptr[m + 1]; q++) found += flags[q] = stamp[X.indices[q]] === m ? 1 : 0;
    if (found !== T.indptr[m + 1] - T.indptr[m]) throw new RangeError(`movie ${m}: X_train has likes that X_all lacks`);
  }
  return flags;
}

/** A fit's weight terms by r (perm: r -> movieId_enc), a and b also into the given kernel arrays. */
function fitState(w: Weighting, perm: Int32Array, arrays: Pick<FitState, "a" | "b" | "b32" | "thr32">, threads: number, k: number): FitState {
  const { a, b, b32, thr32 } = arrays;
  const nMovies = perm.length, { indptr } = w.X_movies;
  perm.forEach((m, r) => {
    // without likes, a movie has no pairs in this fit: 0 keeps its estimates finite
    if (indptr[m + 1] === indptr[m]) return;
    a[r] = w.a[m];
    b[r] = b32[r] = w.b[m];
  });
  thr32.fill(FLOAT32_MIN);
  return {
    p: shared(Float64Array.from(perm, (m) => w.p[m])), q: shared(Float64Array.from(perm, (m) => w.q[m])), a, b, b32, thr32,
    buffers: Array.from({ length: threads }, () => ({
      ids: sharedArray(Int32Array, nMovies * 2 * k), vals: sharedArray(Float64Array, nMovies * 2 * k),
      size: sharedArray(Int32Array, nMovies),
    })),
    thr: sharedArray(Float64Array, nMovies).fill(-Infinity),
    out: { ids: sharedArray(Int32Array, nMovies * k), sims: sharedArray(Float32Array, nMovies * k), count: sharedArray(Int32Array, nMovies) },
  };
}

const CHUNK = 8;
// A movie scans all more popular movies for its candidates when it counts at least one co-like per ten
// movies scanned (the kernel's scan is vectorised; listing costs a store per co-like).
const DENSE = 0.1;
// Candidates sampled per k to set a movie's bar.
const SAMPLE = 8;
// Raises the kernel's float32 estimates above the exact weight, whatever their rounding, so that its
// tests can only let through more pairs than exact ones would.
const MARGIN = 1 + 1e-5;
// The least normal float32: the kernel's lowest bar, as weights are > 0.
const FLOAT32_MIN = 2 ** -126;

/**
 * Counts co-likes once per pair, at the less popular movie x against the more popular y < x, and
 * offers the weight to both: symmetry halves the counting. Going from the most popular movie down,
 * each movie first gets its own candidates in bulk, then offers from ever less popular movies, whose
 * weights tend to fall, so the shared bar rejects most of them. Threads take chunks of movies as they go.
 */
export function countTask(s: Shared, index: number): void {
  const { k, nMovies, next, done } = s;
  const t: Thread = {
    kernel: instantiate(s.module, s.memory), index, ...s.scratch[index],
    sample: { ids: new Int32Array(SAMPLE * k + 2), vals: new Float64Array(SAMPLE * k + 2) },
    own: { ids: new Int32Array(nMovies), vals: new Float64Array(nMovies) },
  };
  for (;;) {
    const lo = Atomics.add(next, 0, CHUNK);
    if (lo >= nMovies) return;
    let work = 0;
    for (let x = lo; x < Math.min(lo + CHUNK, nMovies); x++) {
      countMovie(s, t, x);
      work += s.increments[x];
    }
    Atomics.add(done, 0, Math.round(work / WORK_UNIT));
  }
}

/** A thread's kernel, scratch arrays and index (into each fit's buffers). */
interface Thread {
  kernel: Kernel;
  index: number;
  acc: Int32Array | Float64Array;
  touched: Int32Array;
  pass: Int32Array;
  passV: Float64Array;
  pass2: Int32Array;
  passV2: Float64Array;
  /** a sample of x's candidates, and x's own candidates */
  sample: { ids: Int32Array; vals: Float64Array };
  own: { ids: Int32Array; vals: Float64Array };
}

/** How a fit reads x's counts: (acc >> shift) & mask; count() fills them (again) and returns how many candidates to scan. */
interface Counts {
  shift: number;
  mask: number;
  count: () => number;
}

/** Where a scan lists a fit's pairs: pass (y * 4 + flags) and passV (count or sum). */
interface Listed {
  pass: Int32Array;
  passV: Float64Array;
}

/**
 * Counts x's co-likes with the more popular movies for each fit, then selects from them. Two cosine fits
 * count and scan at once, packed, unless x has too many likes for 16 bits.
 */
function countMovie(s: Shared, t: Thread, x: number): void {
  const { fits } = s, { kernel } = t;
  const train = [s.entries.byteOffset + 12 * s.ePtr[x], s.entries.byteOffset + 12 * s.eMid[x]] as const;
  const test = [train[1], s.entries.byteOffset + 12 * s.ePtr[x + 1]] as const;
  const { starts, mids, acc, touched } = { starts: s.starts.byteOffset, mids: s.mids.byteOffset, acc: t.acc.byteOffset, touched: t.touched.byteOffset };
  if (s.weighted) {
    scanMovie(s, t, x, 0, false, { shift: 0, mask: -1, count: () => kernel.sumList(train[0], train[1], starts, s.invD.byteOffset, acc, touched) });
    return;
  }
  const heavy = fits.length > 1 && s.likes[x] > PACKED;
  // A movie whose users' rows cover much of [0, x) scans that range for its candidates; a sparse one
  // lists them as it counts.
  const scan = heavy || s.increments[x] >= DENSE * x;
  const countPairs = (from: number, to: number, incT: number, incS: number, listed = 0) =>
    scan ? (kernel.countAll(from, to, starts, mids, acc, incT, incS), x) : kernel.countList(from, to, starts, mids, acc, incT, incS, touched, listed);
  if (fits.length === 1) {
    scanMovie(s, t, x, 0, scan, { shift: 0, mask: -1, count: () => countPairs(train[0], train[1], 1, 1) });
  } else if (heavy) {
    scanMovie(s, t, x, 0, scan, { shift: 0, mask: -1, count: () => countPairs(train[0], train[1], 1, 0) });
    scanMovie(s, t, x, 1, scan, { shift: 0, mask: -1, count: () => countPairs(train[0], test[1], 1, 1) });
  } else {
    const both = () => countPairs(test[0], test[1], 1, 1, countPairs(train[0], train[1], PACKED + 2, 1));
    const counts = [{ shift: 16, mask: PACKED, count: both }, { shift: 0, mask: PACKED, count: both }];
    const lists = [{ pass: t.pass, passV: t.passV }, { pass: t.pass2, passV: t.passV2 }];
    const n = both();
    const bars = fits.map((fit, f) => barOf(s, t, fit, x, n, scan, counts[f]));
    const [T, A] = fits, at = (a: { byteOffset: number }) => a.byteOffset;
    const passed = scan
      ? kernel.scanBoth(n, acc, at(T.b32), at(T.thr32), T.a[x] * MARGIN, Math.max(bars[0], FLOAT32_MIN), at(t.pass), at(t.passV),
        at(A.b32), at(A.thr32), A.a[x] * MARGIN, Math.max(bars[1], FLOAT32_MIN), at(t.pass2), at(t.passV2))
      : fits.map((fit, f) => scanPairs(s, t, fit, x, n, scan, counts[f], f, bars[f], fit.thr32, lists[f]));
    fits.forEach((_, f) => selectMovie(s, t, x, f, scan, counts[f], n, bars[f], passed[f], lists[f]));
  }
}

/** Counts x's co-likes for fit f, scans them against the bars, and selects. */
function scanMovie(s: Shared, t: Thread, x: number, f: number, scan: boolean, counts: Counts): void {
  const fit = s.fits[f], list = { pass: t.pass, passV: t.passV };
  const n = counts.count();
  const bar = barOf(s, t, fit, x, n, scan, counts);
  selectMovie(s, t, x, f, scan, counts, n, bar, scanPairs(s, t, fit, x, n, scan, counts, 1, bar, fit.thr32, list), list);
}

/**
 * Fit f's candidates for x, from the pairs its scan listed, offered to both sides. Offers to y go as they
 * come. x's own come in bulk: a sample gave a bar that about 2k of them reach; if at least k reach it,
 * nothing below it can make x's top k, else x counts again and takes them all.
 */
function selectMovie(s: Shared, t: Thread, x: number, f: number, scan: boolean, counts: Counts, n: number, bar: number, passed: number, list: Listed): void {
  const { k, perm } = s;
  const fit = s.fits[f], buffer = fit.buffers[t.index];
  const { ids, vals } = t.own;
  const { pass, passV } = list;
  let own = 0, reached = 0;
  for (let i = 0; i < passed; i++) {
    const y = pass[i] >> 2, v = passV[i];
    if (pass[i] & 1) offer(s, fit, buffer, y, x, weight(s, fit, v, y, x));
    if (pass[i] & 2) {
      ids[own] = perm[y];
      vals[own] = weight(s, fit, v, x, y);
      // every pair of weight >= bar / MARGIN passed
      if (vals[own++] * Math.sqrt(MARGIN) >= bar) reached++;
    }
  }
  if (reached < k && bar > -Infinity) {
    counts.count();
    passed = scanPairs(s, t, fit, x, n, scan, counts, 1, -Infinity, s.never, list);
    for (own = 0; own < passed; own++) {
      const y = pass[own] >> 2;
      ids[own] = perm[y];
      vals[own] = weight(s, fit, passV[own], x, y);
    }
  }
  // x's buffer is still empty: this thread goes through movies in ascending order, and offers to y < x.
  const kept = Math.min(k, own), at = x * 2 * k;
  selectBest(ids, vals, 0, own, kept);
  buffer.ids.set(ids.subarray(0, kept), at);
  buffer.vals.set(vals.subarray(0, kept), at);
  buffer.size[x] = kept;
  if (kept === k) raiseThr(s, fit, x, buffer.vals, at);
}

/**
 * Lists x's pairs that may pass y's bar (thr) or x's (bar) in list, with their counts; clears t.acc when
 * clear is 1 (sums are always cleared).
 */
function scanPairs(s: Shared, t: Thread, fit: FitState, x: number, n: number, scan: boolean, counts: Counts, clear: number, bar: number, thr: Float32Array, list: Listed): number {
  const { kernel, acc, touched } = t;
  const pass = list.pass.byteOffset, passV = list.passV.byteOffset;
  const axR = fit.a[x] * MARGIN;
  if (s.weighted) return kernel.scanListSums(n, touched.byteOffset, acc.byteOffset, fit.a.byteOffset, fit.b.byteOffset, thr.byteOffset, axR, fit.b[x] * MARGIN, bar, pass, passV);
  // listed candidates may have no count in this fit: the floor keeps them out
  const { shift, mask } = counts, floor = Math.max(bar, FLOAT32_MIN);
  return scan ? kernel.scanAll(n, acc.byteOffset, shift, mask, clear, fit.b32.byteOffset, thr.byteOffset, axR, floor, pass, passV)
    : kernel.scanList(n, touched.byteOffset, acc.byteOffset, shift, mask, clear, fit.b32.byteOffset, thr.byteOffset, axR, floor, pass, passV);
}

/**
 * x's bar: about the 2k-th best estimate among its n candidates (y < n when scanning, else listed in
 * t.touched), from a sample of them; -Infinity when n <= 2k.
 */
function barOf(s: Shared, t: Thread, fit: FitState, x: number, n: number, scan: boolean, counts: Counts): number {
  const { k } = s;
  const { acc, touched } = t;
  const { ids, vals } = t.sample;
  const { shift, mask } = counts;
  if (n <= 2 * k) return -Infinity;
  const ax = fit.a[x], stride = n / Math.min(n, SAMPLE * k);
  let m = 0;
  for (let f = 0; f < n; f += stride) {
    const y = scan ? f | 0 : touched[f | 0];
    ids[m] = y;
    vals[m++] = (s.weighted ? acc[y] : (acc[y] >>> shift) & mask) * ax * fit.b[y];
  }
  // at least the 16th best of the sample: fewer above the bar would make it too noisy
  const rank = Math.max(16, Math.ceil((2 * k * m) / n));
  selectBest(ids, vals, 0, m, rank);
  let bar = Infinity;
  for (let i = 0; i < rank; i++) bar = Math.min(bar, vals[i]);
  return bar > 0 ? bar : -Infinity;
}

/** The exact weight of y for x, as the spec and docs/models.md write it, from the co-like count or sum v. */
function weight(s: Shared, fit: FitState, v: number, x: number, y: number): number {
  if (s.similarity === "rp3beta") return (fit.a[x] * v) / fit.q[y];
  return s.similarity === "bm25" ? fit.a[x] * fit.a[y] * v : v / (Math.sqrt(fit.p[x] * fit.q[y]) + s.shrink);
}

/** Appends y to x's buffer; a full buffer keeps its k best (weight descending, then movieId_enc ascending). */
function offer(s: Shared, fit: FitState, h: Buffers, x: number, y: number, w: number): void {
  if (w < fit.thr[x]) return;
  const base = x * 2 * s.k;
  if (h.size[x] === 2 * s.k) keepBest(s, fit, h, x);
  const i = base + h.size[x]++;
  h.ids[i] = s.perm[y];
  h.vals[i] = w;
}

/** Keeps x's k best at the front of its buffer; their worst weight becomes the bar for later offers. */
function keepBest(s: Shared, fit: FitState, h: Buffers, x: number): void {
  const { k } = s;
  const lo = x * 2 * k;
  selectBest(h.ids, h.vals, lo, lo + h.size[x], k);
  h.size[x] = k;
  raiseThr(s, fit, x, h.vals, lo);
}

/** Raises x's bar to the worst of the k weights from vals[at]. */
function raiseThr(s: Shared, fit: FitState, x: number, vals: Float64Array, at: number): void {
  let worst = Infinity;
  for (let i = at; i < at + s.k; i++) if (vals[i] < worst) worst = vals[i];
  if (worst > fit.thr[x]) fit.thr[x] = fit.thr32[x] = worst;
}

/** Merges every thread's buffers for a share of the movies into out, best first, rounded to float32. */
export function mergeTask(s: Shared, index: number, threads: number): void {
  const { k, nMovies, rank } = s;
  const ids = new Int32Array(2 * k * threads), values = new Float64Array(2 * k * threads);
  const bestIds = new Int32Array(k), bestVals = new Float64Array(k);
  for (const { buffers, out } of s.fits) {
    for (let m = Math.floor((index * nMovies) / threads); m < Math.floor(((index + 1) * nMovies) / threads); m++) {
      const x = rank[m];
      let n = 0;
      for (const h of buffers) {
        ids.set(h.ids.subarray(x * 2 * k, x * 2 * k + h.size[x]), n);
        values.set(h.vals.subarray(x * 2 * k, x * 2 * k + h.size[x]), n);
        n += h.size[x];
      }
      const got = topK(ids, values, n, k, bestIds, bestVals);
      for (let i = 0; i < got; i++) {
        out.ids[m * k + i] = bestIds[i];
        out.sims[m * k + i] = bestVals[i];
      }
      out.count[m] = got;
    }
  }
}

function compact(out: FitState["out"], nMovies: number, k: number): Neighbours {
  const indptr = new Int32Array(nMovies + 1);
  for (let m = 0; m < nMovies; m++) indptr[m + 1] = indptr[m] + out.count[m];
  const indices = new Int32Array(indptr[nMovies]), sims = new Float32Array(indptr[nMovies]);
  for (let m = 0; m < nMovies; m++) {
    indices.set(out.ids.subarray(m * k, m * k + out.count[m]), indptr[m]);
    sims.set(out.sims.subarray(m * k, m * k + out.count[m]), indptr[m]);
  }
  return { indptr, indices, sims };
}
