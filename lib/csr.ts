import { runTask, shared, sharedArray } from "./workers";

/** A sparse matrix in compressed sparse row form; column indices ascending within a row. */
export interface Csr {
  nRows: number;
  nCols: number;
  indptr: Int32Array;
  indices: Int32Array;
  data: Float64Array;
}

export const rowIndices = (X: Csr, i: number): Int32Array => X.indices.subarray(X.indptr[i], X.indptr[i + 1]);

export const rowLength = (X: Csr, i: number): number => X.indptr[i + 1] - X.indptr[i];

// 0/1 matrices and their unit-row transposes: their data follows from the pattern, so it is made when first read
// (the pipeline reads only the pattern; at ML-32M's size the data would take a gigabyte).
const ones = new WeakSet<Csr>();

/** A matrix whose data `make` computes on first read. */
function lazy(nRows: number, nCols: number, indptr: Int32Array, indices: Int32Array, make: () => Float64Array): Csr {
  let data: Float64Array | undefined;
  return { nRows, nCols, indptr, indices, get data() { return (data ??= make()); } };
}

/** A 0/1 matrix with the given pattern. */
function binary(nRows: number, nCols: number, indptr: Int32Array, indices: Int32Array): Csr {
  const X = lazy(nRows, nCols, indptr, indices, () => new Float64Array(indices.length).fill(1));
  ones.add(X);
  return X;
}

/**
 * A 0/1 matrix with a 1 at (rows[i], cols[i]) for each i where keep[i] is 1 (every i without keep).
 * Duplicate entries collapse to one.
 */
export function csrFromEntries(rows: Int32Array, cols: Int32Array, nRows: number, nCols: number, keep?: Uint8Array): Csr {
  return csrsFromEntries(rows, cols, nRows, nCols, keep, [keep ? 0b10 : 0b01])[0];
}

/**
 * Several 0/1 matrices from the same entries in one pass: matrix k has a 1 at (rows[i], cols[i]) for each i whose
 * class (classes[i], 0..7; 0 without classes) is in masks[k] (bit c for class c). Duplicate entries collapse to one,
 * kept when any of them is.
 */
export function csrsFromEntries(rows: Int32Array, cols: Int32Array, nRows: number, nCols: number, classes: Uint8Array | undefined, masks: number[]): Csr[] {
  const perRow = sortedCounts(rows, cols, nRows, classes);
  if (perRow) {
    const kept = masks.map((mask) => Uint8Array.from({ length: 8 }, (_, c) => (mask >> c) & 1));
    return fill(rows, cols, nRows, classes, perRow, kept).map(([indptr, indices]) => binary(nRows, nCols, indptr, indices));
  }
  // Counting sort by column, then (stable) by row; repeats of (row, col) then sit together, their classes merged
  // into one set (bit c for class c).
  const order = byKey(cols, nCols, null), sorted = byKey(rows, nRows, order);
  const r = new Int32Array(sorted.length), c = new Int32Array(sorted.length), sets = new Uint8Array(sorted.length);
  let n = 0;
  for (let i = 0; i < sorted.length; i++) {
    const e = sorted[i], bit = 1 << (classes ? classes[e] : 0);
    if (n > 0 && r[n - 1] === rows[e] && c[n - 1] === cols[e]) sets[n - 1] |= bit;
    else { r[n] = rows[e]; c[n] = cols[e]; sets[n++] = bit; }
  }
  const sortedRows = r.subarray(0, n), sortedCols = c.subarray(0, n), classSets = sets.subarray(0, n);
  const kept = masks.map((mask) => Uint8Array.from({ length: 256 }, (_, set) => ((set & mask) !== 0 ? 1 : 0)));
  return fill(sortedRows, sortedCols, nRows, classSets, undefined, kept).map(([indptr, indices]) => binary(nRows, nCols, indptr, indices));
}

/** Entries 0..keys.length-1 (or those of `order`, in that order) sorted by key, stably. */
function byKey(keys: Int32Array, nKeys: number, order: Int32Array | null): Int32Array {
  const n = order ? order.length : keys.length;
  const next = new Int32Array(nKeys + 1);
  for (let i = 0; i < n; i++) next[keys[order ? order[i] : i] + 1]++;
  for (let k = 0; k < nKeys; k++) next[k + 1] += next[k];
  const sorted = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const e = order ? order[i] : i;
    sorted[next[keys[e]]++] = e;
  }
  return sorted;
}

/**
 * Entries per row and tag (0..7, row-major), or null unless entries come by row, then column, with no
 * repeats (MovieLens files come sorted by user, then movie).
 */
function sortedCounts(rows: Int32Array, cols: Int32Array, nRows: number, tags: Uint8Array | undefined): Int32Array | null {
  const perRow = new Int32Array(nRows * 8);
  return countSorted(rows, cols, tags, 0, rows.length, perRow) ? perRow : null;
}

/** Adds entries lo..hi - 1 to perRow (8 per row, by tag); false, at the first, unless they come by row, then column, with no repeats. */
export function countSorted(rows: Int32Array, cols: Int32Array, tags: Uint8Array | undefined, lo: number, hi: number, perRow: Int32Array): boolean {
  let lastRow = -1, lastCol = 0;
  for (let i = lo; i < hi; i++) {
    const r = rows[i], c = cols[i];
    if (r < lastRow || (r === lastRow && c <= lastCol)) return false;
    lastRow = r;
    lastCol = c;
    perRow[8 * r + (tags ? tags[i] : 0)]++;
  }
  return true;
}

/**
 * Each matrix's indptr and indices from entries sorted by row, then column, without repeats: matrix k keeps the
 * entries whose tag t has kept[k][t] = 1; `perRow` counts the entries by row and tag (8 per row), when given.
 * One branch-free pass per matrix (and one to count without perRow).
 */
function fill(rows: Int32Array, cols: Int32Array, nRows: number, tags: Uint8Array | undefined, perRow: Int32Array | undefined, kept: Uint8Array[]): [Int32Array, Int32Array][] {
  return kept.map((keep) => {
    const indptr = new Int32Array(nRows + 1);
    if (perRow) rowPointers(perRow, keep, indptr);
    else {
      for (let i = 0; i < rows.length; i++) indptr[rows[i] + 1] += tags ? keep[tags[i]] : keep[0];
      for (let r = 0; r < nRows; r++) indptr[r + 1] += indptr[r];
    }
    const indices = new Int32Array(indptr[nRows] === cols.length ? cols.length : indptr[nRows] + 1);
    return [indptr, fillIndices(cols, tags, keep, indices, indptr[nRows])];
  });
}

/** indptr (nRows + 1 long) from the entries per row and tag, keeping tag t when keep[t] is 1. */
function rowPointers(perRow: Int32Array, keep: Uint8Array, indptr: Int32Array): void {
  const nRows = indptr.length - 1;
  for (let r = 0; r < nRows; r++) {
    let count = 0;
    for (let t = 0; t < 8; t++) count += keep[t] * perRow[8 * r + t];
    indptr[r + 1] = indptr[r] + count;
  }
}

/** The `nnz` columns kept (tag t when keep[t] is 1), in order, written to `indices` (all of cols, or nnz + 1 long). */
function fillIndices(cols: Int32Array, tags: Uint8Array | undefined, keep: Uint8Array, indices: Int32Array, nnz: number): Int32Array {
  if (nnz === cols.length) {
    indices.set(cols);
    return indices;
  }
  // a spare slot: each entry is written, then kept or not
  if (tags) for (let i = 0, n = 0; i < cols.length; i++) { indices[n] = cols[i]; n += keep[tags[i]]; }
  return indices.subarray(0, nnz);
}

/**
 * csrsFromEntries on `threads` threads, a matrix a thread at a time, each with its transpose where `transposed[k]`
 * (no data: 0/1 matrices); all in shared memory. Entries not sorted by row, then column, are left to csrsFromEntries.
 * `counted`: sortedCounts's result when already known (encodeAll counts in its pass).
 */
export async function csrsOnThreads(
  rows: Int32Array, cols: Int32Array, nRows: number, nCols: number, classes: Uint8Array, masks: number[], transposed: boolean[], threads: number, counted?: Int32Array | null,
): Promise<[Csr, Csr | undefined][]> {
  const perRow = threads > 1 ? (counted === undefined ? sortedCounts(rows, cols, nRows, classes) : counted) : null;
  if (!perRow) return csrsFromEntries(rows, cols, nRows, nCols, classes, masks).map((X, k) => [X, transposed[k] ? transpose(X) : undefined]);
  const keeps = masks.map((mask) => Uint8Array.from({ length: 8 }, (_, c) => (mask >> c) & 1));
  const matrices = keeps.map((keep, k): CsrJob["matrices"][number] => {
    const indptr = sharedArray(Int32Array, nRows + 1);
    rowPointers(perRow, keep, indptr);
    const nnz = indptr[nRows];
    return {
      keep, indptr, indices: sharedArray(Int32Array, nnz === cols.length ? nnz : nnz + 1),
      ...(transposed[k] ? { tIndptr: sharedArray(Int32Array, nCols + 1), tIndices: sharedArray(Int32Array, nnz) } : {}),
    };
  });
  // Each matrix to the thread with the least work so far, the largest first. Its work: a pass over all entries (a
  // copy when it keeps all, a quarter of that), and a transpose's about 4 times a pass's per entry kept (measured).
  const on = Math.min(threads, matrices.length), work = new Array<number>(on).fill(0), owner = new Array<number>(matrices.length);
  const cost = matrices.map((m, k) => (m.indptr[nRows] === cols.length ? cols.length / 4 : cols.length) + (transposed[k] ? 4 * m.indptr[nRows] : 0));
  for (const k of cost.map((_, k) => k).sort((a, b) => cost[b] - cost[a])) {
    owner[k] = work.indexOf(Math.min(...work));
    work[owner[k]] += cost[k];
  }
  await runTask("csr.fill", csrTask, { cols: shared(cols), classes: shared(classes), matrices, owner }, on);
  return matrices.map(({ indptr, indices, tIndptr, tIndices }) => {
    const nnz = indptr[nRows];
    return [binary(nRows, nCols, indptr, indices.subarray(0, nnz)), tIndptr && tIndices ? binary(nCols, nRows, tIndptr, tIndices) : undefined];
  });
}

/** What the threads of csrsOnThreads share: the entries' columns and classes, per matrix its kept classes and arrays, and its thread. */
interface CsrJob {
  cols: Int32Array;
  classes: Uint8Array;
  owner: number[];
  matrices: { keep: Uint8Array; indptr: Int32Array; indices: Int32Array; tIndptr?: Int32Array; tIndices?: Int32Array }[];
}

/** Thread `index` of `threads` of csrsOnThreads: the matrices it owns and their transposes (on one thread, all). */
export function csrTask({ cols, classes, matrices, owner }: CsrJob, index: number, threads: number): void {
  for (let k = 0; k < matrices.length; k++) {
    if (owner[k] % threads !== index) continue;
    const { keep, indptr, indices, tIndptr, tIndices } = matrices[k];
    const nRows = indptr.length - 1, kept = fillIndices(cols, classes, keep, indices, indptr[nRows]);
    if (tIndptr && tIndices) transposeInto(indptr, kept, tIndptr, tIndices);
  }
}

/** Xᵀ, rows sorted; data carried along (a 0/1 matrix's stays implied). */
export function transpose(X: Csr): Csr {
  const { nRows, nCols } = X;
  const indptr = new Int32Array(nCols + 1), indices = new Int32Array(X.indices.length);
  const values = ones.has(X) ? undefined : X.data, data = values && new Float64Array(X.indices.length);
  transposeInto(X.indptr, X.indices, indptr, indices, values, data);
  if (!data) return binary(nCols, nRows, indptr, indices);
  return { nRows: nCols, nCols: nRows, indptr, indices, data };
}

/** The transpose of the matrix (rowPtr, cols[, values]) written to zeroed indptr (nCols + 1 long), indices[, data]. */
function transposeInto(rowPtr: Int32Array, cols: Int32Array, indptr: Int32Array, indices: Int32Array, values?: Float64Array, data?: Float64Array): void {
  const nRows = rowPtr.length - 1, nCols = indptr.length - 1;
  for (let p = 0; p < cols.length; p++) indptr[cols[p] + 1]++;
  for (let c = 0; c < nCols; c++) indptr[c + 1] += indptr[c];
  const next = indptr.slice(0, nCols);
  for (let r = 0; r < nRows; r++) {
    for (let p = rowPtr[r]; p < rowPtr[r + 1]; p++) {
      const q = next[cols[p]]++;
      indices[q] = r;
      if (data) data[q] = values![p];
    }
  }
}

/** Each row scaled to unit L2 norm; empty rows stay empty (spec step 8). A 0/1 matrix's rows hold 1 / sqrt(length), made on first read. */
export function normalizeRows(X: Csr): Csr {
  if (ones.has(X)) {
    return lazy(X.nRows, X.nCols, X.indptr, X.indices, () => {
      const data = new Float64Array(X.indices.length);
      // the general loop below on ones: a sum of n ones is n exactly, and 1 * scale is scale
      for (let r = 0; r < X.nRows; r++) data.fill(1 / Math.sqrt(X.indptr[r + 1] - X.indptr[r]), X.indptr[r], X.indptr[r + 1]);
      return data;
    });
  }
  const data = new Float64Array(X.data.length);
  for (let r = 0; r < X.nRows; r++) {
    let sum = 0;
    for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) sum += X.data[p] * X.data[p];
    const scale = 1 / Math.sqrt(sum);
    for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) data[p] = X.data[p] * scale;
  }
  return { ...X, data };
}

/** A CSR from a dense array of rows (tests and notebooks). */
export function csrFromDense(dense: number[][]): Csr {
  const nCols = dense[0]?.length ?? 0;
  const indptr = [0], indices: number[] = [], data: number[] = [];
  for (const row of dense) {
    row.forEach((v, c) => { if (v !== 0) { indices.push(c); data.push(v); } });
    indptr.push(indices.length);
  }
  return { nRows: dense.length, nCols, indptr: Int32Array.from(indptr), indices: Int32Array.from(indices), data: Float64Array.from(data) };
}

/** A CSR as a dense array of rows (tests and notebooks). */
export function csrToDense(X: Csr): number[][] {
  return Array.from({ length: X.nRows }, (_, r) => {
    const row = new Array<number>(X.nCols).fill(0);
    for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) row[X.indices[p]] = X.data[p];
    return row;
  });
}
