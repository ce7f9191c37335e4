import { type Csr, rowLength } from "./csr";
import type { Neighbours } from "./neighbours";
import { hashSample } from "./split";

/** The spec's metrics (step 12), under the spec's names. */
export interface Metrics {
  precision: number;
  recall: number;
  hitrate: number;
  total_hits: number;
  total_liked: number;
  users: number;
  ndcg: number;
  coverage: number;
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

/** Scores `rank(u)`, the top-n movies for user u, against the test likes in X_test. */
export function evaluate(
  users: Int32Array, X_test: Csr, rank: (u: number) => ArrayLike<number>, n: number, neighbours: Neighbours,
): Metrics {
  const discount = Float64Array.from({ length: n }, (_, i) => 1 / Math.log2(i + 2));
  const relevant = new Int32Array(X_test.nCols).fill(-1);
  const recommended = new Uint8Array(X_test.nCols);
  let precision = 0, recall = 0, ndcg = 0, totalHits = 0, totalLiked = 0;
  for (const u of users) {
    const start = X_test.indptr[u], end = X_test.indptr[u + 1];
    for (let p = start; p < end; p++) relevant[X_test.indices[p]] = u;
    const top = rank(u);
    let hits = 0, dcg = 0, idcg = 0;
    for (let i = 0; i < top.length; i++) {
      recommended[top[i]] = 1;
      if (relevant[top[i]] === u) {
        hits++;
        dcg += discount[i];
      }
    }
    for (let i = 0; i < Math.min(n, end - start); i++) idcg += discount[i];
    precision += hits / n;
    recall += hits / (end - start);
    ndcg += dcg / idcg;
    if (hits > 0) totalHits++;
    totalLiked += end - start;
  }
  let withNeighbours = 0, covered = 0;
  for (let m = 0; m < recommended.length; m++) {
    if (neighbours.indptr[m + 1] > neighbours.indptr[m]) withNeighbours++;
    covered += recommended[m];
  }
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
    coverage: withNeighbours > 0 ? covered / withNeighbours : 0,
  };
}
