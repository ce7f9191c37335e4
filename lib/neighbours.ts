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
  const {
    similarity = DEFAULTS.similarity, shrink = DEFAULTS.shrink, beta = DEFAULTS.beta, alpha = DEFAULTS.alpha, asym = DEFAULTS.asym, k1 = DEFAULTS.k1, b = DEFAULTS.b,
    threads = defaultThreads(), onProgress,
  } = options;
  const w = weighting(X_movies, { similarity, shrink, beta, alpha, asym, k1, b });
  const s = await prepare(w.X_movies, Math.min(k, Math.max(1, X_movies.nRows - 1)), w, threads);
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
  const perMovie = (f: (m: number) => number) => Float64Array.from(n, (_, m) => f(m));
  if (similarity === "cosine") {
    const a = perMovie((m) => 1 / Math.sqrt(n[m]));
    return { similarity, shrink, X_movies, a, b: a, p: n, q: n };
  }
  const d = new Float64Array(X_movies.nCols);
  for (const u of X_movies.indices) d[u]++;
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

/** Everything the threads share; movies are relabelled by popularity (r) so that hot counters sit together. */
interface Shared {
  k: number;
  nMovies: number;
  similarity: SimilarityName;
  /** v sums user weights (else it counts co-likes) */
  weighted: boolean;
  shrink: number;
  /** the kernel, and the memory holding the arrays it reads (views below, addresses their byteOffset) */
  module: WasmModule;
  memory: WasmMemory;
  /** r -> movieId_enc, and back */
  perm: Int32Array;
  rank: Int32Array;
  /** the terms p, q of movie r's exact weight, and factors a, b with weight(x -> y) ~ acc * a[x] * b[y] (Weighting) */
  p: Float64Array;
  q: Float64Array;
  a: Float64Array;
  b: Float64Array;
  /** b and thr in float32 (thr at least FLOAT32_MIN), padded to a multiple of 4, for the kernel */
  b32: Float32Array;
  thr32: Float32Array;
  /** +Infinity: a thr that no pair passes */
  never: Float32Array;
  /**
   * Movie r's likes are entries mPtr[r]..mPtr[r+1], one group of them per band of BAND movies up to r's:
   * entry p is the segment seg[2p]..seg[2p+1] (addresses) of its user's row in uIdx (ascending relabelled
   * movies, less their band's start) that lies in the band and precedes r; users[p] is that user.
   */
  mPtr: Int32Array;
  seg: Int32Array;
  uIdx: Uint16Array;
  users: Int32Array;
  /** each user's weight, when weighted (Weighting's userWeight) */
  invD: Float64Array;
  /**
   * The likes that movie r counts from bitsets of its users' rows instead (bits, bit r' of i64 word r' / 64
   * set for the user's movies r'): rowBits[hPtr[r]..hPtr[r+1]] are their addresses. Only scanned movies have them.
   */
  hPtr: Int32Array;
  bits: Int32Array;
  rowBits: Int32Array;
  /** co-like increments of movie r */
  increments: Int32Array;
  next: Int32Array;
  done: Int32Array;
  totalWork: number;
  buffers: Buffers[];
  /** each thread's counts (or sums) against the current movie, the movies it touched, and the pairs that pass */
  scratch: { acc: Int32Array | Float64Array; touched: Int32Array; pass: Int32Array; passV: Float64Array }[];
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
// Rows hold movies as 16-bit offsets in their band: half the bytes that counting reads.
const BAND = 65536;
const bandOf = (r: number) => Math.floor(r / BAND);

async function prepare(X_movies: Csr, k: number, w: Weighting, threads: number): Promise<Shared> {
  const nMovies = X_movies.nRows, nUsers = X_movies.nCols, nnz = X_movies.indices.length;
  const weighted = w.userWeight !== undefined;
  const likes = Float64Array.from({ length: nMovies }, (_, m) => X_movies.indptr[m + 1] - X_movies.indptr[m]);
  const perm = shared(Int32Array.from(likes.keys()).sort((x, y) => likes[y] - likes[x] || x - y));
  const rank = new Int32Array(nMovies);
  perm.forEach((m, r) => (rank[m] = r));

  const uPtr = new Int32Array(nUsers + 1);
  for (let p = 0; p < nnz; p++) uPtr[X_movies.indices[p] + 1]++;
  for (let u = 0; u < nUsers; u++) uPtr[u + 1] += uPtr[u];
  // Each like's co-likes (its position in its user's row), each movie's increments, the likes counted from
  // bitsets (by index in X_movies), how far each user's bitset goes, and where each movie's entries start.
  // Each user's position in its row where each band starts, and where each thread's movies (an equal
  // share of the likes) start, let the threads build the rows at once.
  const pos = new Int32Array(nUsers), increments = new Int32Array(nMovies), bitsTo = new Int32Array(nUsers);
  const fromBits = sharedArray(Uint8Array, nnz), mPtr = sharedArray(Int32Array, nMovies + 1), hPtr = sharedArray(Int32Array, nMovies + 1);
  const at = () => shared(pos.map((x, u) => x + uPtr[u]));
  const bandStart = [shared(uPtr)], starts = [bandStart[0]], from = [0];
  let seen = 0, totalWork = 0;
  for (let r = 0; r < nMovies; r++) {
    if (r > 0 && r % BAND === 0) bandStart.push(at());
    const m = perm[r];
    if (from.length < threads && seen >= (from.length * nnz) / threads) {
      from.push(r);
      starts.push(at());
    }
    seen += likes[m];
    for (let q = X_movies.indptr[m]; q < X_movies.indptr[m + 1]; q++) increments[r] += pos[X_movies.indices[q]];
    totalWork += increments[r];
    const scan = scans(weighted, increments[r], r);
    mPtr[r + 1] = mPtr[r];
    hPtr[r + 1] = hPtr[r];
    for (let q = X_movies.indptr[m]; q < X_movies.indptr[m + 1]; q++) {
      const u = X_movies.indices[q];
      if (scan && dense(pos[u], r)) {
        fromBits[q] = 1;
        hPtr[r + 1]++;
        bitsTo[u] = r;
      } else mPtr[r + 1] += bandOf(r) + 1;
      pos[u]++;
    }
  }
  // threads without a share (more threads than movies) get an empty one
  while (from.length <= threads) {
    from.push(nMovies);
    starts.push(starts[0]);
  }
  const bitsAt = shared(new Int32Array(nUsers));
  let words = 0;
  for (let u = 0; u < nUsers; u++) {
    bitsAt[u] = words;
    words += 2 * Math.ceil(bitsTo[u] / 64);
  }

  const padded = nMovies + 4, entries = mPtr[nMovies];
  const { memory, common, threads: scratch } = sharedMemory({
    seg: ["i32", 2 * entries], uIdx: ["u16", nnz], users: ["i32", weighted ? entries : 0], invD: ["f64", weighted ? nUsers : 0],
    bits: ["i32", words], rowBits: ["i32", hPtr[nMovies]],
    a: ["f64", nMovies], b: ["f64", nMovies], b32: ["f32", padded], thr32: ["f32", padded], never: ["f32", padded],
  }, { acc: [weighted ? "f64" : "i32", nMovies + 64], touched: ["i32", nMovies], pass: ["i32", nMovies], passV: ["f64", nMovies] }, threads);
  const { seg, uIdx, users, invD, bits, rowBits, a, b, b32, thr32, never } = common;
  await runTask("neighbours.rows", rowsTask, {
    indptr: shared(X_movies.indptr), indices: shared(X_movies.indices), perm, weighted, fromBits, mPtr, hPtr, bitsAt,
    bandStart, starts, from, seg, uIdx, users, bits, rowBits,
  }, threads);
  // the bitsets, user by user from their rows
  for (let u = 0; u < nUsers; u++) {
    for (let i = uPtr[u], band = 0; i < uPtr[u + 1]; i++) {
      while (band + 1 < bandStart.length && i >= bandStart[band + 1][u]) band++;
      const r = band * BAND + uIdx[i];
      if (r >= bitsTo[u]) break;
      bits[bitsAt[u] + (r >> 5)] |= 1 << (r & 31);
    }
  }

  perm.forEach((m, r) => {
    a[r] = w.a[m];
    b[r] = b32[r] = w.b[m];
  });
  if (w.userWeight) invD.set(w.userWeight);
  thr32.fill(FLOAT32_MIN);
  never.fill(Infinity);
  return {
    k, nMovies, similarity: w.similarity, weighted, shrink: w.shrink, module: await kernelModule(), memory,
    perm, rank: shared(rank), p: shared(Float64Array.from(perm, (m) => w.p[m])), q: shared(Float64Array.from(perm, (m) => w.q[m])),
    a, b, b32, thr32, never, mPtr, seg, uIdx, users, invD, hPtr, bits, rowBits, increments: shared(increments),
    next: sharedArray(Int32Array, 1), done: sharedArray(Int32Array, 1), totalWork: Math.ceil(totalWork / WORK_UNIT),
    buffers: Array.from({ length: threads }, () => ({
      ids: sharedArray(Int32Array, nMovies * 2 * k), vals: sharedArray(Float64Array, nMovies * 2 * k),
      size: sharedArray(Int32Array, nMovies),
    })),
    scratch,
    thr: sharedArray(Float64Array, nMovies).fill(-Infinity),
    out: { ids: sharedArray(Int32Array, nMovies * k), sims: sharedArray(Float32Array, nMovies * k), count: sharedArray(Int32Array, nMovies) },
  };
}

/** What rowsTask reads and fills: X_movies, prepare's per-like and per-movie marks, and the kernel's arrays. */
interface Rows extends Pick<Shared, "perm" | "weighted" | "mPtr" | "hPtr" | "seg" | "uIdx" | "users" | "bits" | "rowBits"> {
  indptr: Int32Array;
  indices: Int32Array;
  fromBits: Uint8Array;
  bitsAt: Int32Array;
  /** each user's position in its row at the start of each band, and of each thread's movies from[index].. */
  bandStart: Int32Array[];
  starts: Int32Array[];
  from: number[];
}

/** Builds the users' rows and the entries of this thread's share of the movies. */
export function rowsTask(o: Rows, index: number): void {
  const { indptr, indices, perm, weighted, fromBits, mPtr, hPtr, bitsAt, bandStart, seg, uIdx, users, bits, rowBits } = o;
  const fill = o.starts[index].slice(), base = uIdx.byteOffset;
  for (let r = o.from[index], p = mPtr[r], h = hPtr[r]; r < o.from[index + 1]; r++) {
    const m = perm[r], last = bandOf(r);
    for (let band = 0; band <= last; band++) {
      for (let q = indptr[m]; q < indptr[m + 1]; q++) {
        if (fromBits[q]) continue;
        const u = indices[q];
        if (weighted) users[p] = u;
        seg[2 * p] = base + 2 * bandStart[band][u];
        seg[2 * p++ + 1] = base + 2 * (band < last ? bandStart[band + 1][u] : fill[u]);
      }
    }
    for (let q = indptr[m]; q < indptr[m + 1]; q++) {
      const u = indices[q];
      if (fromBits[q]) rowBits[h++] = bits.byteOffset + 4 * bitsAt[u];
      uIdx[fill[u]++] = r % BAND;
    }
  }
}

const CHUNK = 8;
// A movie scans all more popular movies for its candidates when it counts at least one co-like per ten
// movies scanned (the kernel's scan is vectorised; listing costs a store per co-like).
const DENSE = 0.1;
const scans = (weighted: boolean, increments: number, x: number) => !weighted && increments >= DENSE * x;
// A scanned movie counts a user's co-likes from the bitset of its row when the row holds at least 64 movies
// before it, one per 25 or more: the kernel counts 64 movies of a bitset in about the time of 3 co-likes.
const dense = (before: number, x: number) => before >= 64 && before >= 0.04 * x;
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
    kernel: instantiate(s.module, s.memory), buffer: s.buffers[index], ...s.scratch[index],
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

/** A thread's kernel, buffers and scratch arrays. */
interface Thread {
  kernel: Kernel;
  buffer: Buffers;
  acc: Int32Array | Float64Array;
  touched: Int32Array;
  pass: Int32Array;
  passV: Float64Array;
  /** a sample of x's candidates, and x's own candidates */
  sample: { ids: Int32Array; vals: Float64Array };
  own: { ids: Int32Array; vals: Float64Array };
}

/**
 * Counts x's co-likes with the more popular movies, then offers each pair to both sides. Offers to y
 * go as they come. x's own come in bulk: a sample gives a bar that about 2k of them reach; if at
 * least k reach it, nothing below it can make x's top k, else x takes them all.
 */
function countMovie(s: Shared, t: Thread, x: number): void {
  const { k, perm } = s;
  const { ids, vals } = t.own;
  // A movie whose users' rows cover much of [0, x) scans that range for its candidates; a sparse one
  // lists them as it counts.
  const scan = scans(s.weighted, s.increments[x], x);
  const n = count(s, t, x, scan);
  const bar = barOf(s, t, x, n, scan);
  let passed = scanPairs(s, t, x, n, scan, bar, s.thr32);
  let own = 0, reached = 0;
  for (let i = 0; i < passed; i++) {
    const y = t.pass[i] >> 2, v = t.passV[i];
    if (t.pass[i] & 1) offer(s, t.buffer, y, x, weight(s, v, y, x));
    if (t.pass[i] & 2) {
      ids[own] = perm[y];
      vals[own] = weight(s, v, x, y);
      // every pair of weight >= bar / MARGIN passed
      if (vals[own++] * Math.sqrt(MARGIN) >= bar) reached++;
    }
  }
  if (reached < k && bar > -Infinity) {
    // the scan cleared the counts: count again, and take every candidate
    count(s, t, x, scan);
    passed = scanPairs(s, t, x, n, scan, -Infinity, s.never);
    for (own = 0; own < passed; own++) {
      const y = t.pass[own] >> 2;
      ids[own] = perm[y];
      vals[own] = weight(s, t.passV[own], x, y);
    }
  }
  // x's buffer is still empty: this thread goes through movies in ascending order, and offers to y < x.
  const kept = Math.min(k, own), at = x * 2 * k;
  selectBest(ids, vals, 0, own, kept);
  t.buffer.ids.set(ids.subarray(0, kept), at);
  t.buffer.vals.set(vals.subarray(0, kept), at);
  t.buffer.size[x] = kept;
  if (kept === k) raiseThr(s, x, t.buffer.vals, at);
}

/** Counts (or sums) x's co-likes into t.acc, band by band; returns how many candidates to scan. */
function count(s: Shared, t: Thread, x: number, scan: boolean): number {
  const { kernel, acc, touched } = t;
  const bands = bandOf(x) + 1, group = (s.mPtr[x + 1] - s.mPtr[x]) / bands;
  let n = 0;
  for (let band = 0; band < bands; band++) {
    const e = s.mPtr[x] + band * group, p = s.seg.byteOffset + 8 * e, pEnd = p + 8 * group, at = touched.byteOffset + 4 * n;
    if (s.weighted) n += kernel.sumList(p, pEnd, s.users.byteOffset + 4 * e, s.invD.byteOffset, acc.byteOffset, at, band * BAND);
    else if (!scan) n += kernel.countList(p, pEnd, acc.byteOffset, at, band * BAND);
    else kernel.countAll(p, pEnd, acc.byteOffset, band * BAND);
  }
  if (s.hPtr[x + 1] > s.hPtr[x]) kernel.countBits(s.rowBits.byteOffset + 4 * s.hPtr[x], s.rowBits.byteOffset + 4 * s.hPtr[x + 1], acc.byteOffset, x);
  return scan ? x : n;
}

/** Lists x's pairs that may pass y's bar (thr) or x's (bar) in t.pass, their counts in t.passV; clears t.acc. */
function scanPairs(s: Shared, t: Thread, x: number, n: number, scan: boolean, bar: number, thr: Float32Array): number {
  const { kernel, acc, touched, pass, passV } = t;
  const axR = s.a[x] * MARGIN;
  if (s.weighted) {
    return kernel.scanListSums(n, touched.byteOffset, acc.byteOffset, s.a.byteOffset, s.b.byteOffset, thr.byteOffset, axR, s.b[x] * MARGIN, bar, pass.byteOffset, passV.byteOffset);
  }
  return scan ? kernel.scanAll(n, acc.byteOffset, s.b32.byteOffset, thr.byteOffset, axR, Math.max(bar, FLOAT32_MIN), pass.byteOffset, passV.byteOffset)
    : kernel.scanList(n, touched.byteOffset, acc.byteOffset, s.b32.byteOffset, thr.byteOffset, axR, bar, pass.byteOffset, passV.byteOffset);
}

/**
 * x's bar: about the 2k-th best estimate among its n candidates (y < n when scanning, else listed in
 * t.touched), from a sample of them; -Infinity when n <= 2k.
 */
function barOf(s: Shared, t: Thread, x: number, n: number, scan: boolean): number {
  const { k, b } = s;
  const { acc, touched } = t;
  const { ids, vals } = t.sample;
  if (n <= 2 * k) return -Infinity;
  const ax = s.a[x], stride = n / Math.min(n, SAMPLE * k);
  // m samples, of which the positive ones (a bar is > 0) are kept
  let m = 0, kept = 0;
  for (let f = 0; f < n; f += stride, m++) {
    const y = scan ? f | 0 : touched[f | 0], v = acc[y] * ax * b[y];
    if (!(v > 0)) continue;
    ids[kept] = y;
    vals[kept++] = v;
  }
  // at least the 8th best of the sample: fewer above the bar would make it too noisy (x then counts again)
  const rank = Math.max(8, Math.ceil((2 * k * m) / n));
  if (kept < rank) return -Infinity;
  selectBest(ids, vals, 0, kept, rank);
  let bar = Infinity;
  for (let i = 0; i < rank; i++) bar = Math.min(bar, vals[i]);
  return bar;
}

/** The exact weight of y for x, as the spec and docs/models.md write it, from the co-like count or sum v. */
function weight(s: Shared, v: number, x: number, y: number): number {
  if (s.similarity === "rp3beta") return (s.a[x] * v) / s.q[y];
  return s.similarity === "bm25" ? s.a[x] * s.a[y] * v : v / (Math.sqrt(s.p[x] * s.q[y]) + s.shrink);
}

/** Appends y to x's buffer; a full buffer keeps its k best (weight descending, then movieId_enc ascending). */
function offer(s: Shared, h: Buffers, x: number, y: number, w: number): void {
  if (w < s.thr[x]) return;
  const base = x * 2 * s.k;
  if (h.size[x] === 2 * s.k) keepBest(s, h, x);
  const i = base + h.size[x]++;
  h.ids[i] = s.perm[y];
  h.vals[i] = w;
}

/** Keeps x's k best at the front of its buffer; their worst weight becomes the bar for later offers. */
function keepBest(s: Shared, h: Buffers, x: number): void {
  const { k } = s;
  const lo = x * 2 * k;
  selectBest(h.ids, h.vals, lo, lo + h.size[x], k);
  h.size[x] = k;
  raiseThr(s, x, h.vals, lo);
}

/** Raises x's bar to the worst of the k weights from vals[at]. */
function raiseThr(s: Shared, x: number, vals: Float64Array, at: number): void {
  let worst = Infinity;
  for (let i = at; i < at + s.k; i++) if (vals[i] < worst) worst = vals[i];
  if (worst > s.thr[x]) s.thr[x] = s.thr32[x] = worst;
}

/** Merges every thread's buffers for a share of the movies into out, best first, rounded to float32. */
export function mergeTask(s: Shared, index: number, threads: number): void {
  const { k, nMovies, rank, buffers, out } = s;
  const ids = new Int32Array(2 * k * threads), values = new Float64Array(2 * k * threads);
  const bestIds = new Int32Array(k), bestVals = new Float64Array(k);
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
