import { test } from "node:test";
import assert from "node:assert/strict";
import { csrFromDense, csrFromEntries, csrToDense, normalizeRows, transpose } from "../lib/csr";

test("csrFromEntries sorts columns, drops duplicates and unkept entries", () => {
  const rows = Int32Array.from([2, 0, 0, 2, 0, 1]);
  const cols = Int32Array.from([1, 3, 0, 1, 3, 2]);
  const X = csrFromEntries(rows, cols, 4, 4, Uint8Array.from([1, 1, 1, 1, 1, 0]));
  assert.deepEqual([...X.indptr], [0, 2, 2, 3, 3]);
  assert.deepEqual([...X.indices], [0, 3, 1]);
  assert.deepEqual(csrToDense(X), [[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]);
});

test("transpose and normalizeRows", () => {
  const X = csrFromDense([[1, 0, 1], [1, 1, 0], [0, 0, 0]]);
  assert.deepEqual(csrToDense(transpose(X)), [[1, 1, 0], [0, 1, 0], [1, 0, 0]]);
  const N = normalizeRows(transpose(X));
  assert.deepEqual(csrToDense(N)[0], [1 / Math.sqrt(2), 1 / Math.sqrt(2), 0]);
  assert.deepEqual(csrToDense(N)[1], [0, 1, 0]);
  assert.deepEqual(csrToDense(normalizeRows(X))[2], [0, 0, 0]);
});

test("sorted and shuffled entries give the same matrix", () => {
  const rows: number[] = [], cols: number[] = [];
  for (let r = 0; r < 50; r++) for (let c = 0; c < 40; c++) if ((r * 7 + c * 13) % 5 === 0) { rows.push(r); cols.push(c); }
  const keep = Uint8Array.from(rows, (_, i) => (i % 3 === 0 ? 0 : 1));
  const sorted = csrFromEntries(Int32Array.from(rows), Int32Array.from(cols), 50, 40, keep);
  const order = rows.map((_, i) => i).sort((a, b) => ((a * 7919) % rows.length) - ((b * 7919) % rows.length));
  const shuffled = csrFromEntries(Int32Array.from(order, (i) => rows[i]), Int32Array.from(order, (i) => cols[i]), 50, 40, Uint8Array.from(order, (i) => keep[i]));
  assert.deepEqual(shuffled, sorted);
  assert.equal(sorted.indices.length, keep.reduce((a, b) => a + b, 0));
});
