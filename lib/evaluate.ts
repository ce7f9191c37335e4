import { type Blend, type Factors, type FactorScratch, newFactorScratch, rankWithFactors } from "./als";
import { type Csr, rowLength } from "./csr";
import type { Neighbours } from "./neighbours";
import { instantiate, kernelModule, sharedMemory, type WasmMemory, type WasmModule } from "./kernel";
import { copyPairs, placeRanges, popularInto, rankFromHistory } from "./recommend";
import { hashSample } from "./split";
import { barrier, runTask, shared, sharedArray } from "./workers";

/**
 * The spec's metrics (step 12), under the spec's names, and two beside them: `map` = mean of AP@n =
 * (sum over hit positions i of precision@i) / min(n, |relevant|); `mrr` = mean of 1 / the rank of the
 * first hit, 0 when none.
 */
export interface Metrics {
  precision: number;
  recall: number;
  hitrate: number;
  total_hits: number;
  total_liked: number;
  users: number;
  ndcg: number;
  coverage: number;
  map: number;
  mrr: number;
}

/**
 * The users evaluated (spec step 12): at least one train like and one test like; when `evalUsers`
 * is set, that many of them chosen by hash with the word "eval". Returns user encodings ascending.
 */
export function evaluationUsers(
  X_train: Csr, X_test: Csr, userIds: Int32Array, evalUsers: number | undefined, seed: number,
): Int32Array {
  const eligible: number[] = [];
  for (let u = 0; u < X_train.nRows; u++) if (rowLength(X_train, u) > 0 && rowLength(X_test, u) > 0) eligible.push(u);
  const users = Int32Array.from(eligible);
  if (evalUsers === undefined || evalUsers >= users.length) return users;
  const kept = new Set(hashSample(Int32Array.from(users, (u) => userIds[u]), evalUsers, seed, "eval"));
  return users.filter((u) => kept.has(userIds[u]));
}

type Rows = Pick<Csr, "indptr" | "indices">;

/** Per evaluated user (by position), hits, DCG, AP and reciprocal rank of their top n; per movie, whether anyone got it. */
interface Scores {
  hits: Int32Array;
  dcg: Float64Array;
  ap: Float64Array;
  rr: Float64Array;
  recommended: Uint8Array;
}

/**
 * Scores `rank(u)`, the top-n movies for user u, against the test likes in X_test; coverage counts the
 * movies with neighbours, or the `catalogue` movies when given.
 */
export function evaluate(users: Int32Array, X_test: Csr, rank: (u: number) => ArrayLike<number>, n: number, neighbours: Neighbours, catalogue?: number): Metrics {
  const scores = newScores(users.length, X_test.nCols);
  const score = scorer(X_test, n, scores);
  users.forEach((u, i) => score(i, u, rank(u)));
  return summarize(users, X_test, n, catalogue ?? withNeighbours(neighbours), scores);
}

/** What a thread needs to rank and score its share of the users. */
export interface EvaluationInput {
  neighbours: Neighbours;
  popular: Int32Array;
  X_train: Rows;
  trainRated: Rows;
  X_test: Csr;
  /** ALS's factors (users as in X_train), and for the blend the weight of ALS */
  factors?: Factors;
  weight?: number;
}

/** How the users are ranked: spec step 10, popularity, ALS, or the blend of ALS and neighbours. */
export type Method = "neighbours" | "popularity" | "als" | "blend";

interface EvaluationShared extends Omit<EvaluationInput, "X_test"> {
  X_test: Rows;
  users: Int32Array;
  n: number;
  methods: Method[];
  next: Int32Array;
  /** per method */
  scores: Scores[];
  /**
   * for the model's ranking: the kernel, its memory (holding the neighbour lists, X_train, trainRated, and each
   * thread's scores and top n), and where each movie's list is (then `neighbours` holds only indptr)
   */
  kernel?: { module: WasmModule; memory: WasmMemory; ranges: Int32Array; scratch: { score: Float64Array; touched: Int32Array; topIds: Int32Array; topScores: Float64Array }[]; fill: KernelFill };
}

/**
 * What the threads copy into the kernel memory before ranking, each a share: the neighbour lists (as pairs, at their
 * `ranges`) and X_train's and trainRated's arrays; `ready`, a barrier's state, holds the threads till all are done.
 */
interface KernelFill {
  neighbours: Neighbours;
  pairs: Int32Array;
  copies: [from: Int32Array, to: Int32Array][];
  ready: Int32Array;
}

/**
 * Spec step 12 for the model's recommendations (step 10, ALS or the blend) or the popularity baseline,
 * users spread over `threads` threads; the sums run in user order, so the result does not depend on the
 * count. ALS and the blend rank the movies with a train like (`popular`), and their coverage counts those.
 */
export async function evaluateRanking(input: EvaluationInput, users: Int32Array, n: number, method: Method, threads: number): Promise<Metrics> {
  return (await evaluateRankings(input, users, n, [method], threads))[0];
}

/**
 * Below this much work (score updates, factor products: about 0.1 s on one thread), an evaluation is not worth
 * starting threads for (tune scores many small grids).
 */
const MIN_THREADED_WORK = 1 << 25;

/**
 * The threads worth starting for evaluateRankings: 1 below MIN_THREADED_WORK, estimated as the score updates of the
 * neighbours (likes x list length) and the factor products of ALS and the blend (users x candidates x factors).
 */
export function evaluationThreads(input: Pick<EvaluationInput, "neighbours" | "popular" | "X_train" | "factors">, users: Int32Array, n: number, methods: Method[], threads: number): number {
  const perList = input.neighbours.indices.length / Math.max(1, input.neighbours.indptr.length - 1);
  const work = methods.reduce((sum, method) => sum + (method === "popularity" ? users.length * n : method === "neighbours"
    ? input.X_train.indices.length * perList : users.length * input.popular.length * (input.factors?.factors ?? 0)), 0);
  return work < MIN_THREADED_WORK ? 1 : threads;
}

/** evaluateRanking for several methods (the model and the popularity baseline) in one pass over the users. */
export async function evaluateRankings(input: EvaluationInput, users: Int32Array, n: number, methods: Method[], threads: number): Promise<Metrics[]> {
  const rows = (X: Rows) => ({ indptr: shared(X.indptr), indices: shared(X.indices) });
  const model = methods.includes("neighbours") && n >= 1 ? await inKernelMemory(input, n, threads) : undefined;
  const byFactors = methods.some((m) => m === "als" || m === "blend");
  const s: EvaluationShared = {
    neighbours: model ? { indptr: shared(input.neighbours.indptr), indices: new Int32Array(0), sims: new Float32Array(0) } : { indptr: shared(input.neighbours.indptr), indices: shared(input.neighbours.indices), sims: shared(input.neighbours.sims) },
    popular: shared(input.popular),
    X_train: model?.X_train ?? rows(input.X_train),
    trainRated: model?.trainRated ?? rows(input.trainRated),
    X_test: rows(input.X_test),
    users: shared(users),
    n,
    methods,
    next: sharedArray(Int32Array, 1),
    scores: methods.map(() => newScores(users.length, input.X_test.nCols)),
    kernel: model?.kernel,
    ...(input.factors && byFactors ? { factors: { factors: input.factors.factors, users: shared(input.factors.users), movies: shared(input.factors.movies) }, weight: input.weight } : {}),
  };
  if (methods.includes("blend") && (s.factors === undefined || s.weight === undefined)) throw new TypeError("the blend needs factors and a weight");
  if (methods.includes("als") && s.factors === undefined) throw new TypeError("ALS needs factors");
  await runTask("evaluate.rank", rankTask, s, threads);
  return methods.map((method, k) =>
    summarize(users, input.X_test, n, method === "als" || method === "blend" ? input.popular.length : withNeighbours(input.neighbours), s.scores[k]));
}

/**
 * A kernel memory for the neighbours (as placeNeighbours places them), X_train and trainRated, copied in by the
 * threads (see fillKernel), and each thread's scores and top n.
 */
async function inKernelMemory({ neighbours, popular, X_train, trainRated }: EvaluationInput, n: number, threads: number) {
  const nMovies = neighbours.indptr.length - 1, nPairs = neighbours.indices.length;
  const { memory, common, threads: scratch } = sharedMemory({
    ranges: ["i32", 2 * nMovies], pairs: ["i32", 2 * nPairs],
    trainIndptr: ["i32", X_train.indptr.length], trainIndices: ["i32", X_train.indices.length],
    ratedIndptr: ["i32", trainRated.indptr.length], ratedIndices: ["i32", trainRated.indices.length],
  }, { score: ["f64", nMovies], touched: ["i32", nMovies], topIds: ["i32", n], topScores: ["f64", n] }, threads);
  const { ranges, pairs } = common;
  placeRanges(neighbours, popular, ranges, pairs);
  const fill: KernelFill = {
    neighbours: { indptr: shared(neighbours.indptr), indices: shared(neighbours.indices), sims: shared(neighbours.sims) }, pairs,
    copies: [[X_train.indptr, common.trainIndptr], [X_train.indices, common.trainIndices], [trainRated.indptr, common.ratedIndptr], [trainRated.indices, common.ratedIndices]]
      .map(([from, to]) => [shared(from), to]),
    ready: sharedArray(Int32Array, 2),
  };
  return {
    X_train: { indptr: common.trainIndptr, indices: common.trainIndices },
    trainRated: { indptr: common.ratedIndptr, indices: common.ratedIndices },
    kernel: { module: await kernelModule(), memory, ranges, scratch, fill },
  };
}

/** Thread `index` of `threads`: its share of the kernel memory's copies, then it waits for the other threads' (see KernelFill). */
function fillKernel({ neighbours, pairs, copies, ready }: KernelFill, ranges: Int32Array, index: number, threads: number): void {
  const share = (n: number) => [Math.floor((n * index) / threads), Math.floor((n * (index + 1)) / threads)];
  const [lo, hi] = share(neighbours.indptr.length - 1);
  copyPairs(neighbours, ranges, pairs, lo, hi);
  for (const [from, to] of copies) {
    const [a, b] = share(from.length);
    to.set(from.subarray(a, b), a);
  }
  barrier(ready, threads);
}

const CHUNK = 256;

/** Ranks and scores chunks of users until none are left, for each method; the model's ranking runs in the kernel. */
export function rankTask(s: EvaluationShared, index: number, threads: number): void {
  if (s.kernel) fillKernel(s.kernel.fill, s.kernel.ranges, index, threads);
  const { users, n, neighbours, popular, X_train, trainRated, next } = s;
  const scorers = s.scores.map((scores) => scorer(s.X_test, n, scores));
  const row = (X: Rows, u: number) => X.indices.subarray(X.indptr[u], X.indptr[u + 1]);
  const kernel = s.kernel && instantiate(s.kernel.module, s.kernel.memory);
  const scratch = s.kernel?.scratch[index];
  const factorScratch = s.factors && newFactorScratch(neighbours.indptr.length - 1, popular.length);
  // the popularity baseline's: the user's rated movies marked with the user, and the top n
  const ratedBy = new Int32Array(neighbours.indptr.length - 1).fill(-1), popularTop = new Int32Array(n);
  const rank = (method: Method, u: number): ArrayLike<number> => {
    switch (method) {
      case "neighbours": {
        if (!kernel || !scratch || X_train.indptr[u + 1] === X_train.indptr[u]) return rankFromHistory(neighbours, popular, row(X_train, u), row(trainRated, u), n).movies;
        const h = X_train.indices.byteOffset, r = trainRated.indices.byteOffset;
        const got = kernel.rankUser(h + 4 * X_train.indptr[u], h + 4 * X_train.indptr[u + 1], r + 4 * trainRated.indptr[u], r + 4 * trainRated.indptr[u + 1],
          s.kernel!.ranges.byteOffset, scratch.score.length, scratch.score.byteOffset, scratch.touched.byteOffset, n, scratch.topIds.byteOffset, scratch.topScores.byteOffset);
        return scratch.topIds.subarray(0, got);
      }
      case "popularity": {
        for (let p = trainRated.indptr[u]; p < trainRated.indptr[u + 1]; p++) ratedBy[trainRated.indices[p]] = u;
        return popularTop.subarray(0, popularInto(popular, ratedBy, u, n, popularTop));
      }
      default: {
        const blend: Blend | undefined = method === "blend" ? { neighbours, history: row(X_train, u), weight: s.weight! } : undefined;
        return rankWithFactors(s.factors!, u, popular, row(trainRated, u), n, factorScratch as FactorScratch, blend).movies;
      }
    }
  };
  for (;;) {
    const lo = Atomics.add(next, 0, CHUNK);
    if (lo >= users.length) return;
    for (let i = lo; i < Math.min(lo + CHUNK, users.length); i++) s.methods.forEach((method, k) => scorers[k](i, users[i], rank(method, users[i])));
  }
}

function newScores(nUsers: number, nMovies: number): Scores {
  return {
    hits: sharedArray(Int32Array, nUsers), dcg: sharedArray(Float64Array, nUsers), ap: sharedArray(Float64Array, nUsers),
    rr: sharedArray(Float64Array, nUsers), recommended: sharedArray(Uint8Array, nMovies),
  };
}

/** Scores one user's top n: hits, binary DCG, AP@n and reciprocal rank against their test likes. */
function scorer(X_test: Rows, n: number, scores: Scores) {
  const discount = Float64Array.from({ length: n }, (_, i) => 1 / Math.log2(i + 2));
  const relevant = new Int32Array(scores.recommended.length).fill(-1);
  return (i: number, u: number, top: ArrayLike<number>) => {
    for (let p = X_test.indptr[u]; p < X_test.indptr[u + 1]; p++) relevant[X_test.indices[p]] = u;
    let hits = 0, dcg = 0, ap = 0, rr = 0;
    for (let r = 0; r < top.length; r++) {
      scores.recommended[top[r]] = 1;
      if (relevant[top[r]] === u) {
        hits++;
        dcg += discount[r];
        ap += hits / (r + 1);
        if (rr === 0) rr = 1 / (r + 1);
      }
    }
    scores.hits[i] = hits;
    scores.dcg[i] = dcg;
    scores.ap[i] = ap / Math.min(n, X_test.indptr[u + 1] - X_test.indptr[u]);
    scores.rr[i] = rr;
  };
}

/** Movies with neighbours: the catalogue of spec step 12's coverage. */
function withNeighbours(neighbours: Neighbours): number {
  let count = 0;
  for (let m = 0; m + 1 < neighbours.indptr.length; m++) if (neighbours.indptr[m + 1] > neighbours.indptr[m]) count++;
  return count;
}

function summarize(users: Int32Array, X_test: Csr, n: number, catalogue: number, scores: Scores): Metrics {
  const idcg = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) idcg[i + 1] = idcg[i] + 1 / Math.log2(i + 2);
  let precision = 0, recall = 0, ndcg = 0, map = 0, mrr = 0, totalHits = 0, totalLiked = 0;
  users.forEach((u, i) => {
    const hits = scores.hits[i], relevant = rowLength(X_test, u);
    precision += hits / n;
    recall += hits / relevant;
    ndcg += scores.dcg[i] / idcg[Math.min(n, relevant)];
    map += scores.ap[i];
    mrr += scores.rr[i];
    if (hits > 0) totalHits++;
    totalLiked += relevant;
  });
  let covered = 0;
  for (let m = 0; m < scores.recommended.length; m++) covered += scores.recommended[m];
  const count = users.length;
  const mean = (sum: number) => (count > 0 ? sum / count : 0);
  return {
    precision: mean(precision),
    recall: mean(recall),
    hitrate: mean(totalHits),
    total_hits: totalHits,
    total_liked: totalLiked,
    users: count,
    ndcg: mean(ndcg),
    coverage: catalogue > 0 ? covered / catalogue : 0,
    map: mean(map),
    mrr: mean(mrr),
  };
}
