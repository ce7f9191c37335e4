import { type Csr, transpose } from "./csr";
import type { Progress } from "./ingest";
import type { Neighbours } from "./neighbours";
import { random } from "./synthetic";
import { topK } from "./topk";
import { type AlsKernel, alsKernelModule, instantiateAls, sharedMemory, type WasmMemory, type WasmModule } from "./kernel";
import { barrier, runTask, shared, sharedArray } from "./workers";

/** Implicit ALS (Hu, Koren, Volinsky 2008): confidence 1 + confidence * x on X_train's entries. */
export interface AlsOptions {
  factors: number;
  regularization: number;
  /** c = 1 + confidence * x (implicit's `alpha`) */
  confidence: number;
  iterations: number;
  seed: number;
  /** conjugate-gradient steps per row and half-iteration (Takacs et al. 2011), as implicit's cg_steps */
  cgSteps?: number;
  /** worker threads; the result is the same for any count */
  threads?: number;
  /** told the iterations done, of all */
  onProgress?: Progress;
}

/** What a saved model keeps of ALS: the movie factors (movies x factors, float32) and how users are solved and ranked. */
export interface ServedAls {
  factors: number;
  movies: Float32Array;
  regularization: number;
  confidence: number;
  /** the blend's weight of ALS; null ranks by ALS alone */
  weight: number | null;
}

/** User and movie factors, row-major (users x factors, movies x factors), float32 as stored. */
export interface Factors {
  factors: number;
  users: Float32Array;
  movies: Float32Array;
}

/**
 * Fits the factors of X_train (users x movies, data x) by alternating least squares, each row solved by
 * `cgSteps` conjugate-gradient steps from its previous value, as implicit's least_squares_cg. Factors
 * start uniform in [0, 0.01) from `seed`; users are solved first.
 */
export async function fitAls(X_train: Csr, options: AlsOptions): Promise<Factors> {
  const { factors: f, regularization, confidence, iterations, seed, cgSteps = 3, threads = 1, onProgress } = options;
  const X_movies = transpose(X_train);
  const nnz = X_train.indices.length;
  const { memory, common, threads: scratch } = sharedMemory({
    userIndices: ["i32", nnz], userData: ["f64", nnz], movieIndices: ["i32", nnz], movieData: ["f64", nnz],
    users: ["f64", X_train.nRows * f], movies: ["f64", X_train.nCols * f], GtG: ["f64", f * f],
  }, { x: ["f64", f], r: ["f64", f], p: ["f64", f], Ap: ["f64", f] }, threads, `ALS's likes and ${f} factors`);
  const { users, movies, GtG } = common;
  const rand = random(seed);
  for (let i = 0; i < users.length; i++) users[i] = rand() * 0.01;
  for (let i = 0; i < movies.length; i++) movies[i] = rand() * 0.01;
  common.userIndices.set(X_train.indices);
  common.userData.set(X_train.data);
  common.movieIndices.set(X_movies.indices);
  common.movieData.set(X_movies.data);
  const kernel = { module: await alsKernelModule(), memory, scratch };
  const s: FitShared = {
    byUser: { indptr: shared(X_train.indptr), indices: common.userIndices, data: common.userData },
    byMovie: { indptr: shared(X_movies.indptr), indices: common.movieIndices, data: common.movieData },
    users, movies, GtG, f, regularization, confidence, cgSteps, iterations,
    next: sharedArray(Int32Array, 1), sync: sharedArray(Int32Array, 2), done: sharedArray(Int32Array, 1), kernel,
  };
  // all iterations in one task (a thread's start costs about as much as a half-iteration on small data)
  if (threads <= 1) fitTask(s, 0, 1, (done) => onProgress?.(done, iterations));
  else {
    await runTask("als.fit", fitTask, s, threads, onProgress && { counter: s.done, total: iterations, report: onProgress });
    onProgress?.(iterations, iterations);
  }
  return { factors: f, users: Float32Array.from(users), movies: Float32Array.from(movies) };
}

/** GᵀG + regularization * I, f x f. */
function gram(G: ArrayLike<number>, f: number, regularization: number): Float64Array {
  const out = new Float64Array(f * f);
  for (let o = 0; o < G.length; o += f) {
    for (let a = 0; a < f; a++) {
      const ga = G[o + a];
      if (ga === 0) continue;
      for (let b = 0; b < f; b++) out[a * f + b] += ga * G[o + b];
    }
  }
  for (let a = 0; a < f; a++) out[a * f + a] += regularization;
  return out;
}

/** A side's rows (users x movies, or movies x users), indices and data in the kernel's memory. */
type Side = Pick<Csr, "indptr" | "indices" | "data">;

/** What the threads of a fit share (all but indptr, next, sync and done in the kernel's memory). */
interface FitShared {
  byUser: Side;
  byMovie: Side;
  users: Float64Array;
  movies: Float64Array;
  GtG: Float64Array;
  f: number;
  regularization: number;
  confidence: number;
  cgSteps: number;
  iterations: number;
  /** the next row to take, the barrier's state, the iterations done */
  next: Int32Array;
  sync: Int32Array;
  done: Int32Array;
  kernel: { module: WasmModule; memory: WasmMemory; scratch: { x: Float64Array; r: Float64Array; p: Float64Array; Ap: Float64Array }[] };
}

const CHUNK = 64;

/**
 * Thread `index` of `threads` of fitAls: each half-iteration (users given movies, then movies given users), thread 0
 * computes GᵀG + reg I, then every thread solves chunks of rows until none are left (each row depends only on G:
 * any thread order gives the same F), the sums over a row's likes and the products with GtG in the kernel.
 * `onIteration` is told the iterations done (on one thread).
 */
export function fitTask(s: FitShared, index: number, threads: number, onIteration?: (done: number) => void): void {
  const k = instantiateAls(s.kernel.module, s.kernel.memory);
  for (let it = 0; it < s.iterations; it++) {
    for (const [X, F, G] of [[s.byUser, s.users, s.movies], [s.byMovie, s.movies, s.users]] as const) {
      if (index === 0) {
        s.GtG.set(gram(G, s.f, s.regularization));
        Atomics.store(s.next, 0, 0);
      }
      barrier(s.sync, threads);
      solveRows(s, X, F, G, k, s.kernel.scratch[index]);
      barrier(s.sync, threads);
    }
    if (index === 0) Atomics.store(s.done, 0, it + 1);
    onIteration?.(it + 1);
  }
}

/** Solves the rows of F given G that this thread takes, CHUNK at a time, till none are left. */
function solveRows(s: FitShared, { indptr, indices, data }: Side, F: Float64Array, G: Float64Array, k: AlsKernel, { x, r, p, Ap }: FitShared["kernel"]["scratch"][number]): void {
  const { GtG, f, confidence, cgSteps, next } = s;
  const nRows = indptr.length - 1;
  for (;;) {
    const lo = Atomics.add(next, 0, CHUNK);
    if (lo >= nRows) return;
    for (let u = lo; u < Math.min(lo + CHUNK, nRows); u++) {
      const off = u * f, start = indptr[u], n = indptr[u + 1] - start;
      if (n === 0) {
        // no entries: b = 0, so the solution is 0
        F.fill(0, off, off + f);
        continue;
      }
      const idx = indices.byteOffset + 4 * start, dat = data.byteOffset + 8 * start;
      x.set(F.subarray(off, off + f));
      // r = b - A x, with A = GtG (+ reg I) + sum (c - 1) g gᵀ and b = sum c g over the row's entries
      k.gemv(GtG.byteOffset, x.byteOffset, r.byteOffset, f, -1);
      k.likes(idx, dat, n, G.byteOffset, x.byteOffset, r.byteOffset, f, confidence, 1, -1);
      let rsOld = 0;
      for (let a = 0; a < f; a++) {
        p[a] = r[a];
        rsOld += r[a] * r[a];
      }
      if (rsOld < 1e-20) continue;
      for (let step = 0; step < cgSteps; step++) {
        // Ap = GtG p + sum (c - 1) (g . p) g
        k.gemv(GtG.byteOffset, p.byteOffset, Ap.byteOffset, f, 1);
        k.likes(idx, dat, n, G.byteOffset, p.byteOffset, Ap.byteOffset, f, confidence, 0, 1);
        let pAp = 0;
        for (let a = 0; a < f; a++) pAp += p[a] * Ap[a];
        const alpha = rsOld / pAp;
        let rsNew = 0;
        for (let a = 0; a < f; a++) {
          x[a] += alpha * p[a];
          r[a] -= alpha * Ap[a];
          rsNew += r[a] * r[a];
        }
        if (rsNew < 1e-20) break;
        const beta = rsNew / rsOld;
        for (let a = 0; a < f; a++) p[a] = r[a] + beta * p[a];
        rsOld = rsNew;
      }
      F.set(x, off);
    }
  }
}

/**
 * A new user's factors from the movies they liked, solved exactly given the movie factors (as implicit's
 * recalculate_user): (YᵀY + reg I + sum (c - 1) y yᵀ) x = sum c y, by Cholesky.
 */
export function userFactors(model: Pick<Factors, "factors" | "movies">, liked: ArrayLike<number>, regularization: number, confidence: number): Float64Array {
  const f = model.factors, Y = model.movies;
  const A = Float64Array.from(gramOf(Y, f)), b = new Float64Array(f);
  for (let a = 0; a < f; a++) A[a * f + a] += regularization;
  const c = 1 + confidence;
  for (let h = 0; h < liked.length; h++) {
    const g = liked[h] * f;
    for (let i = 0; i < f; i++) {
      b[i] += c * Y[g + i];
      for (let j = 0; j < f; j++) A[i * f + j] += (c - 1) * Y[g + i] * Y[g + j];
    }
  }
  return choleskySolve(A, b, f);
}

const grams = new WeakMap<Float32Array, Float64Array>();

/** YᵀY, computed once per movie factors (a server answers many users from one model). */
function gramOf(Y: Float32Array, f: number): Float64Array {
  let g = grams.get(Y);
  if (!g) grams.set(Y, (g = gram(Y, f, 0)));
  return g;
}

/** Solves A x = b for symmetric positive definite A (overwritten). */
function choleskySolve(A: Float64Array, b: Float64Array, f: number): Float64Array {
  for (let j = 0; j < f; j++) {
    let d = A[j * f + j];
    for (let k = 0; k < j; k++) d -= A[j * f + k] * A[j * f + k];
    if (!(d > 0)) throw new RangeError(`ALS: the system is not positive definite (pivot ${j} is ${d}); regularization must be > 0`);
    const l = Math.sqrt(d);
    A[j * f + j] = l;
    for (let i = j + 1; i < f; i++) {
      let s = A[i * f + j];
      for (let k = 0; k < j; k++) s -= A[i * f + k] * A[j * f + k];
      A[i * f + j] = s / l;
    }
  }
  const y = new Float64Array(f);
  for (let i = 0; i < f; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= A[i * f + k] * y[k];
    y[i] = s / A[i * f + i];
  }
  for (let i = f - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < f; k++) s -= A[k * f + i] * y[k];
    y[i] = s / A[i * f + i];
  }
  return y;
}

/** Scratch space for ranking a catalogue's movies with factors. */
export interface FactorScratch {
  /** the candidates' ALS scores; each movie's neighbours score (all zero between calls) */
  als: Float64Array;
  nb: Float64Array;
  excluded: Int32Array;
  ids: Int32Array;
  values: Float64Array;
  stamp: number;
}

export function newFactorScratch(nMovies: number, nCandidates: number): FactorScratch {
  return {
    als: new Float64Array(nCandidates), nb: new Float64Array(nMovies), excluded: new Int32Array(nMovies),
    ids: new Int32Array(nCandidates), values: new Float64Array(nCandidates), stamp: 0,
  };
}

/** With `blend`, the ALS scores are mixed with the neighbours' (spec step 10) from the user's liked history. */
export interface Blend {
  neighbours: Neighbours;
  history: ArrayLike<number>;
  /** the weight of ALS; the neighbours get 1 - weight */
  weight: number;
}

/**
 * Top n candidates by the dot product of user and movie factors (in double from the stored float32),
 * movies in `rated` excluded, ties by movieId_enc. The user is a row of model.users or a vector. With
 * `blend`: (1 - weight) * neighbours score / its max + weight * ALS score / its max |score|, both maxima
 * over the user's candidates.
 */
export function rankWithFactors(
  model: Pick<Factors, "factors" | "movies"> & { users?: Float32Array }, user: number | ArrayLike<number>, candidates: Int32Array,
  rated: ArrayLike<number>, n: number, s: FactorScratch, blend?: Blend,
): { movies: Int32Array; scores: Float64Array } {
  const f = model.factors, Y = model.movies;
  const x = typeof user === "number" ? model.users!.subarray(user * f, (user + 1) * f) : user;
  const stamp = ++s.stamp;
  for (let i = 0; i < rated.length; i++) s.excluded[rated[i]] = stamp;
  let m = 0, maxAls = 0, maxNb = 0;
  for (let i = 0; i < candidates.length; i++) {
    const j = candidates[i], g = j * f;
    if (s.excluded[j] === stamp) continue;
    let sum = 0;
    for (let a = 0; a < f; a++) sum += x[a] * Y[g + a];
    s.ids[m] = j;
    s.values[m++] = sum;
    maxAls = Math.max(maxAls, Math.abs(sum));
  }
  if (blend) {
    const { indptr, indices, sims } = blend.neighbours;
    for (let h = 0; h < blend.history.length; h++) {
      const hm = blend.history[h];
      for (let p = indptr[hm]; p < indptr[hm + 1]; p++) s.nb[indices[p]] += sims[p];
    }
    for (let i = 0; i < m; i++) maxNb = Math.max(maxNb, s.nb[s.ids[i]]);
    const wAls = maxAls > 0 ? blend.weight / maxAls : 0, wNb = maxNb > 0 ? (1 - blend.weight) / maxNb : 0;
    for (let i = 0; i < m; i++) s.values[i] = wNb * s.nb[s.ids[i]] + wAls * s.values[i];
    for (let h = 0; h < blend.history.length; h++) {
      const hm = blend.history[h];
      for (let p = indptr[hm]; p < indptr[hm + 1]; p++) s.nb[indices[p]] = 0;
    }
  }
  const movies = new Int32Array(n), scores = new Float64Array(n);
  const got = topK(s.ids, s.values, m, n, movies, scores);
  return { movies: movies.slice(0, got), scores: scores.slice(0, got) };
}
