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

/**
 * A 0/1 matrix with a 1 at (rows[i], cols[i]) for each i where keep[i] is 1 (every i without keep).
 * Duplicate entries collapse to one.
 */
export function csrFromEntries(rows: Int32Array, cols: Int32Array, nRows: number, nCols: number, keep?: Uint8Array): Csr {
  if (isSorted(rows, cols)) return csrFromSorted(rows, cols, nRows, nCols, keep);
  // Bucket by column, then by row: each row then receives its columns in ascending order.
  const colptr = new Int32Array(nCols + 1);
  for (let i = 0; i < rows.length; i++) if (!keep || keep[i]) colptr[cols[i] + 1]++;
  for (let c = 0; c < nCols; c++) colptr[c + 1] += colptr[c];
  const byCol = new Int32Array(colptr[nCols]);
  const fill = colptr.slice(0, nCols);
  for (let i = 0; i < rows.length; i++) if (!keep || keep[i]) byCol[fill[cols[i]]++] = rows[i];
  const indptr = new Int32Array(nRows + 1);
  for (let i = 0; i < byCol.length; i++) indptr[byCol[i] + 1]++;
  for (let r = 0; r < nRows; r++) indptr[r + 1] += indptr[r];
  const indices = new Int32Array(byCol.length);
  const next = indptr.slice(0, nRows);
  for (let c = 0; c < nCols; c++) {
    for (let p = colptr[c]; p < colptr[c + 1]; p++) {
      const r = byCol[p];
      // a repeat of (r, c) lands right after the first one
      if (next[r] === indptr[r] || indices[next[r] - 1] !== c) indices[next[r]++] = c;
    }
  }
  return compact({ nRows, nCols, indptr, indices, data: new Float64Array(0) }, next);
}

/** Whether entries come by row, then column, with no repeats: MovieLens files come sorted by user, then movie. */
function isSorted(rows: Int32Array, cols: Int32Array): boolean {
  for (let i = 1; i < rows.length; i++) {
    if (rows[i] < rows[i - 1] || (rows[i] === rows[i - 1] && cols[i] <= cols[i - 1])) return false;
  }
  return true;
}

/** csrFromEntries for sorted entries: one pass. */
function csrFromSorted(rows: Int32Array, cols: Int32Array, nRows: number, nCols: number, keep?: Uint8Array): Csr {
  const indptr = new Int32Array(nRows + 1);
  for (let i = 0; i < rows.length; i++) if (!keep || keep[i]) indptr[rows[i] + 1]++;
  for (let r = 0; r < nRows; r++) indptr[r + 1] += indptr[r];
  const indices = new Int32Array(indptr[nRows]);
  for (let i = 0, n = 0; i < rows.length; i++) if (!keep || keep[i]) indices[n++] = cols[i];
  return { nRows, nCols, indptr, indices, data: new Float64Array(indices.length).fill(1) };
}

/** Closes the gaps left by duplicates: row r holds indptr[r]..end[r]. */
function compact(X: Csr, end: Int32Array): Csr {
  const indptr = new Int32Array(X.nRows + 1);
  let n = 0;
  for (let r = 0; r < X.nRows; r++) {
    for (let p = X.indptr[r]; p < end[r]; p++) X.indices[n++] = X.indices[p];
    indptr[r + 1] = n;
  }
  const indices = n === X.indices.length ? X.indices : X.indices.slice(0, n);
  return { ...X, indptr, indices, data: new Float64Array(n).fill(1) };
}

/** Xᵀ, rows sorted; data carried along. */
export function transpose(X: Csr): Csr {
  const indptr = new Int32Array(X.nCols + 1);
  for (let p = 0; p < X.indices.length; p++) indptr[X.indices[p] + 1]++;
  for (let c = 0; c < X.nCols; c++) indptr[c + 1] += indptr[c];
  const indices = new Int32Array(X.indices.length);
  const data = new Float64Array(X.indices.length);
  const next = indptr.slice(0, X.nCols);
  for (let r = 0; r < X.nRows; r++) {
    for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) {
      const q = next[X.indices[p]]++;
      indices[q] = r;
      data[q] = X.data[p];
    }
  }
  return { nRows: X.nCols, nCols: X.nRows, indptr, indices, data };
}

/** Each row scaled to unit L2 norm; empty rows stay empty (spec step 8). */
export function normalizeRows(X: Csr): Csr {
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
