import type { Csr } from "./csr";
import type { Progress } from "./ingest";
import { DEFAULTS, type Params } from "./params";
import { topK } from "./topk";
import { defaultThreads, runTask, shared, sharedArray } from "./workers";

/** Each movie's neighbours (spec step 9): movie m's are indices/sims[indptr[m]..indptr[m+1]], best first. */
export interface Neighbours {
  indptr: Int32Array;
  indices: Int32Array;
  sims: Float32Array;
}

/** How the weight of neighbour j for movie m is computed (spec step 9 and "Beyond the original"). */
export interface NeighboursOptions extends Partial<Pick<Params, "similarity" | "shrink" | "beta">> {
  /** Worker threads; the result is the same for any count. Default: the cores available. */
  threads?: number;
  onProgress?: Progress;
}

export const neighboursOf = (nb: Neighbours, m: number) => ({
  indices: nb.indices.subarray(nb.indptr[m], nb.indptr[m + 1]),
  sims: nb.sims.subarray(nb.indptr[m], nb.indptr[m + 1]),
});

/**
 * Top-k neighbours of each movie by the similarity (default: the spec's cosine), weights > 0 only,
 * ties by movieId_enc, self excluded by index, kept weights rounded to float32 (spec step 9).
 * X_movies is movies x users and only its pattern is read: for cosine, c / (sqrt(n_m * n_j) + shrink)
 * from the co-like count c in double; for rp3beta, (1 / n_m) * (sum of 1 / d_u) / n_j ^ beta.
 */
export async function nearestNeighbours(X_movies: Csr, k: number, options: NeighboursOptions = {}): Promise<Neighbours> {
  const { similarity = DEFAULTS.similarity, shrink = DEFAULTS.shrink, beta = DEFAULTS.beta, threads = defaultThreads(), onProgress } = options;
  const s = prepare(X_movies, Math.min(k, Math.max(1, X_movies.nRows - 1)), similarity === "rp3beta" ? beta : undefined, shrink, threads);
  const progress = onProgress && { counter: s.done, total: s.totalWork, report: onProgress };
  await runTask("neighbours.count", countTask, s, threads, progress);
  await runTask("neighbours.merge", mergeTask, s, threads);
  onProgress?.(s.totalWork, s.totalWork);
  return compact(s.out, X_movies.nRows, s.k);
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

/** Everything the threads share; movies are relabelled by popularity (r) so that hot counters sit together. */
interface Shared {
  k: number;
  nMovies: number;
  weighted: boolean;
  shrink: number;
  /** r -> movieId_enc, and back */
  perm: Int32Array;
  rank: Int32Array;
  /** n (likes) of movie r, and factors a, b with weight(x -> y) ~ acc * a[x] * b[y] */
  likes: Float64Array;
  powBeta: Float64Array;
  a: Float64Array;
  b: Float64Array;
  /** movie r's likers: users mUser[p] for p in mPtr[r]..mPtr[r+1], and r's position in their row in mEnd[p] */
  mPtr: Int32Array;
  mUser: Int32Array;
  mEnd: Int32Array;
  /** user rows of relabelled movies, ascending */
  uPtr: Int32Array;
  uIdx: Int32Array;
  invD: Float64Array;
  next: Int32Array;
  done: Int32Array;
  totalWork: number;
  buffers: Buffers[];
  /**
   * Per movie, a weight no greater than its final k-th best (-Infinity at first): any thread's k-th best
   * kept so far qualifies, so all threads share it and offers below it are dropped.
   */
  thr: Float64Array;
  out: { ids: Int32Array; sims: Float32Array; count: Int32Array };
}

/** Per thread and movie, a buffer of 2k candidate (neighbour, weight); when full, its k best are kept. */
interface Buffers {
  ids: Int32Array;
  vals: Float64Array;
  size: Int32Array;
}

const WORK_UNIT = 1024;

/** `beta` set means rp3beta, else cosine with `shrink`. */
function prepare(X_movies: Csr, k: number, beta: number | undefined, shrink: number, threads: number): Shared {
  const nMovies = X_movies.nRows, nUsers = X_movies.nCols, nnz = X_movies.indices.length;
  const likes = Float64Array.from({ length: nMovies }, (_, m) => X_movies.indptr[m + 1] - X_movies.indptr[m]);
  const perm = Int32Array.from(likes.keys()).sort((x, y) => likes[y] - likes[x] || x - y);
  const rank = new Int32Array(nMovies);
  perm.forEach((m, r) => (rank[m] = r));

  const uPtr = new Int32Array(nUsers + 1);
  for (let p = 0; p < nnz; p++) uPtr[X_movies.indices[p] + 1]++;
  for (let u = 0; u < nUsers; u++) uPtr[u + 1] += uPtr[u];
  const fill = uPtr.slice(0, nUsers);
  const uIdx = new Int32Array(nnz), mUser = new Int32Array(nnz), mEnd = new Int32Array(nnz), mPtr = new Int32Array(nMovies + 1);
  let p = 0, totalWork = 0;
  for (let r = 0; r < nMovies; r++) {
    const m = perm[r];
    for (let q = X_movies.indptr[m]; q < X_movies.indptr[m + 1]; q++) {
      const u = X_movies.indices[q];
      uIdx[fill[u]] = r;
      mUser[p] = u;
      mEnd[p++] = fill[u]++;
    }
    mPtr[r + 1] = p;
  }
  for (let q = 0; q < nnz; q++) totalWork += mEnd[q] - uPtr[mUser[q]];

  const weighted = beta !== undefined;
  const powBeta = Float64Array.from(perm, (m) => Math.pow(likes[m], beta ?? 0));
  const likesR = Float64Array.from(perm, (m) => likes[m]);
  const a = Float64Array.from(likesR, (n) => (weighted ? 1 / n : 1 / Math.sqrt(n)));
  const b = Float64Array.from(likesR, (n, r) => (weighted ? 1 / powBeta[r] : 1 / Math.sqrt(n)));
  const invD = Float64Array.from({ length: nUsers }, (_, u) => 1 / (uPtr[u + 1] - uPtr[u]));
  return {
    k, nMovies, weighted, shrink,
    perm: shared(perm), rank: shared(rank), likes: shared(likesR), powBeta: shared(powBeta), a: shared(a), b: shared(b),
    mPtr: shared(mPtr), mUser: shared(mUser), mEnd: shared(mEnd), uPtr: shared(uPtr), uIdx: shared(uIdx), invD: shared(invD),
    next: sharedArray(Int32Array, 1), done: sharedArray(Int32Array, 1), totalWork: Math.ceil(totalWork / WORK_UNIT),
    buffers: Array.from({ length: threads }, () => ({
      ids: sharedArray(Int32Array, nMovies * 2 * k), vals: sharedArray(Float64Array, nMovies * 2 * k),
      size: sharedArray(Int32Array, nMovies),
    })),
    thr: sharedArray(Float64Array, nMovies).fill(-Infinity),
    out: { ids: sharedArray(Int32Array, nMovies * k), sims: sharedArray(Float32Array, nMovies * k), count: sharedArray(Int32Array, nMovies) },
  };
}

const CHUNK = 8;
// A movie scans all more popular movies for its candidates when it counts at least one co-like per movie scanned.
const DENSE = 1;
// Candidates sampled per k to set a movie's bar.
const SAMPLE = 8;
// Bounds the rounding of acc * a * b against the exact weight, so a cheap test can only reject what the exact one would.
const UP = 1 + 1e-12;

/**
 * Counts co-likes once per pair, at the less popular movie x against the more popular y < x, and
 * offers the weight to both: symmetry halves the counting. Going from the most popular movie down,
 * each movie first gets its own candidates in bulk, then offers from ever less popular movies, whose
 * weights tend to fall, so the shared bar rejects most of them. Threads take chunks of movies as they go.
 */
export function countTask(s: Shared, index: number): void {
  const { k, nMovies, weighted, mPtr, mUser, mEnd, uPtr, uIdx, invD, a, b, next, done, thr } = s;
  const buffer = s.buffers[index];
  // Counts fit 16 bits unless a movie has 65,536 likes; the smaller array stays closer to the core.
  const counts = weighted ? new Int32Array(0) : s.likes[0] < 65536 ? new Uint16Array(nMovies) : new Int32Array(nMovies);
  const sums = new Float64Array(weighted ? nMovies : 0);
  const acc = weighted ? sums : counts;
  const touched = new Int32Array(nMovies);
  const scratch = new Float64Array(SAMPLE * k + 2);
  for (;;) {
    const lo = Atomics.add(next, 0, CHUNK);
    if (lo >= nMovies) return;
    let work = 0;
    for (let x = lo; x < Math.min(lo + CHUNK, nMovies); x++) {
      let increments = 0;
      for (let p = mPtr[x]; p < mPtr[x + 1]; p++) increments += mEnd[p] - uPtr[mUser[p]];
      work += increments;
      // A movie whose users' rows cover much of [0, x) scans that range for its candidates; a sparse one
      // lists them as it counts.
      const dense = increments >= DENSE * x;
      let nTouched = 0;
      for (let p = mPtr[x]; p < mPtr[x + 1]; p++) {
        const u = mUser[p], start = uPtr[u], end = mEnd[p];
        if (weighted) {
          const w = invD[u];
          for (let q = start; q < end; q++) {
            const y = uIdx[q], v = sums[y];
            sums[y] = v + w;
            touched[nTouched] = y;
            nTouched += v === 0 ? 1 : 0;
          }
        } else if (dense) {
          for (let q = start; q < end; q++) counts[uIdx[q]]++;
        } else {
          for (let q = start; q < end; q++) {
            const y = uIdx[q], v = counts[y];
            counts[y] = v + 1;
            touched[nTouched] = y;
            nTouched += (v - 1) >>> 31; // 1 on the first touch, branch-free
          }
        }
      }
      const scan = dense && !weighted;
      const n = scan ? x : nTouched;
      // Offers to the more popular y as they come. x's own candidates come in bulk: a sample gives a bar
      // that about 2k of them reach; if at least k do, nothing below it can make x's top k.
      const ax = a[x], bx = b[x];
      let m = 0;
      if (n > 2 * k) {
        const stride = n / Math.min(n, SAMPLE * k);
        for (let f = 0; f < n; f += stride) {
          const y = scan ? Math.floor(f) : touched[Math.floor(f)];
          scratch[m++] = acc[y] * ax * b[y];
        }
      }
      let bar = m > 0 ? kthLargest(scratch, m, Math.ceil((2 * k * m) / n)) : -Infinity;
      if (bar <= 0) bar = -Infinity;
      let reached = 0;
      for (let i = 0; i < n; i++) {
        const y = scan ? i : touched[i], v = acc[y];
        const estimate = v * ax * b[y];
        // (zero counts only occur when scanning: they fail the tests below but for the last)
        if ((weighted ? v * a[y] * bx : estimate) * UP >= thr[y] && v !== 0) offer(s, buffer, y, x, weight(s, v, y, x));
        if (estimate >= bar) reached++;
        if (estimate * UP * UP >= bar && v !== 0) offer(s, buffer, x, y, weight(s, v, x, y));
      }
      if (reached < k) {
        for (let i = 0; i < n; i++) {
          const y = scan ? i : touched[i], v = acc[y];
          if (v !== 0 && v * ax * b[y] * UP * UP < bar) offer(s, buffer, x, y, weight(s, v, x, y));
        }
      }
      if (scan) acc.fill(0, 0, x);
      else for (let i = 0; i < n; i++) acc[touched[i]] = 0;
    }
    Atomics.add(done, 0, Math.round(work / WORK_UNIT));
  }
}

/** The k-th largest of scratch[0..n), by quickselect in place. */
function kthLargest(scratch: Float64Array, n: number, k: number): number {
  let left = 0, right = n - 1;
  const target = k - 1;
  while (left < right) {
    const pivot = scratch[(left + right) >> 1];
    let i = left, j = right;
    while (i <= j) {
      while (scratch[i] > pivot) i++;
      while (scratch[j] < pivot) j--;
      if (i <= j) {
        const v = scratch[i]; scratch[i] = scratch[j]; scratch[j] = v;
        i++;
        j--;
      }
    }
    if (target <= j) right = j;
    else if (target >= i) left = i;
    else break;
  }
  return scratch[target];
}

/** The exact weight of y for x, as the spec writes it, from the co-like count or sum v. */
function weight(s: Shared, v: number, x: number, y: number): number {
  return s.weighted ? ((1 / s.likes[x]) * v) / s.powBeta[y] : v / (Math.sqrt(s.likes[x] * s.likes[y]) + s.shrink);
}

/** Appends y to x's buffer; a full buffer keeps its k best (weight descending, then movieId_enc ascending). */
function offer(s: Shared, h: Buffers, x: number, y: number, w: number): void {
  if (w < s.thr[x]) return;
  const base = x * 2 * s.k;
  if (h.size[x] === 2 * s.k) keepBest(s, h, x);
  const i = base + h.size[x]++;
  h.ids[i] = y;
  h.vals[i] = w;
}

/** Quickselects x's k best to the front of its buffer; their worst weight becomes the bar for later offers. */
function keepBest(s: Shared, h: Buffers, x: number): void {
  const { k, perm } = s;
  const { ids, vals } = h;
  const lo = x * 2 * k, target = lo + k - 1;
  let left = lo, right = lo + h.size[x] - 1;
  while (left < right) {
    const mid = (left + right) >> 1, pv = vals[mid], pid = perm[ids[mid]];
    let i = left, j = right;
    while (i <= j) {
      while (vals[i] > pv || (vals[i] === pv && perm[ids[i]] < pid)) i++;
      while (vals[j] < pv || (vals[j] === pv && perm[ids[j]] > pid)) j--;
      if (i <= j) {
        const id = ids[i]; ids[i] = ids[j]; ids[j] = id;
        const v = vals[i]; vals[i] = vals[j]; vals[j] = v;
        i++;
        j--;
      }
    }
    if (target <= j) right = j;
    else if (target >= i) left = i;
    else break;
  }
  let worst = Infinity;
  for (let i = lo; i < lo + k; i++) if (vals[i] < worst) worst = vals[i];
  h.size[x] = k;
  if (worst > s.thr[x]) s.thr[x] = worst;
}

/** Merges every thread's buffers for a share of the movies into out, best first, rounded to float32. */
export function mergeTask(s: Shared, index: number, threads: number): void {
  const { k, nMovies, perm, rank, buffers, out } = s;
  const candidates = new Int32Array(2 * k * threads), values = new Float64Array(2 * k * threads);
  const bestIds = new Int32Array(k), bestVals = new Float64Array(k);
  for (let m = Math.floor((index * nMovies) / threads); m < Math.floor(((index + 1) * nMovies) / threads); m++) {
    const x = rank[m];
    let n = 0;
    for (const h of buffers) {
      for (let i = x * 2 * k; i < x * 2 * k + h.size[x]; i++) {
        candidates[n] = perm[h.ids[i]];
        values[n++] = h.vals[i];
      }
    }
    const got = topK(candidates, values, n, k, bestIds, bestVals);
    out.ids.set(bestIds.subarray(0, got), m * k);
    out.sims.set(bestVals.subarray(0, got), m * k);
    out.count[m] = got;
  }
}

function compact(out: Shared["out"], nMovies: number, k: number): Neighbours {
  const indptr = new Int32Array(nMovies + 1);
  for (let m = 0; m < nMovies; m++) indptr[m + 1] = indptr[m] + out.count[m];
  const indices = new Int32Array(indptr[nMovies]), sims = new Float32Array(indptr[nMovies]);
  for (let m = 0; m < nMovies; m++) {
    indices.set(out.ids.subarray(m * k, m * k + out.count[m]), indptr[m]);
    sims.set(out.sims.subarray(m * k, m * k + out.count[m]), indptr[m]);
  }
  return { indptr, indices, sims };
}
