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
