import { test } from "node:test";
import assert from "node:assert/strict";
import { csrFromDense, csrFromEntries, csrsFromEntries, csrsOnThreads, csrToDense, normalizeRows, transpose } from "../lib/csr";
import { random } from "../lib/synthetic";

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

test("csrsFromEntries: each matrix keeps the entries of its classes, sorted or shuffled, repeats merged", () => {
  const rand = random(3);
  const nRows = 30, nCols = 20, masks = [0b0010, 0b1000, 0b0011, 0b1010, 0b1111];
  const rows: number[] = [], cols: number[] = [], classes: number[] = [];
  for (let r = 0; r < nRows; r++) for (let c = 0; c < nCols; c++) if (rand() < 0.3) { rows.push(r); cols.push(c); classes.push(Math.floor(rand() * 4)); }
  const byHand = (keep: (i: number) => boolean) => masks.map((mask) => {
    const dense = Array.from({ length: nRows }, () => new Array<number>(nCols).fill(0));
    rows.forEach((r, i) => { if (keep(i) && (mask >> classes[i]) & 1) dense[r][cols[i]] = 1; });
    return dense;
  });
  const sorted = csrsFromEntries(Int32Array.from(rows), Int32Array.from(cols), nRows, nCols, Uint8Array.from(classes), masks);
  assert.deepEqual(sorted.map(csrToDense), byHand(() => true));
  // shuffled, with every third entry repeated under another class: a repeat is kept when any of its classes is
  const order = rows.map((_, i) => i).sort((a, b) => ((a * 7919) % rows.length) - ((b * 7919) % rows.length));
  const entries = [...order, ...order.filter((i) => i % 3 === 0)];
  const repeated = entries.map((i, k) => (k < order.length ? classes[i] : (classes[i] + 1) % 4));
  const shuffled = csrsFromEntries(Int32Array.from(entries, (i) => rows[i]), Int32Array.from(entries, (i) => cols[i]), nRows, nCols, Uint8Array.from(repeated), masks);
  const expected = masks.map((mask) => {
    const dense = Array.from({ length: nRows }, () => new Array<number>(nCols).fill(0));
    entries.forEach((i, k) => { if ((mask >> repeated[k]) & 1) dense[rows[i]][cols[i]] = 1; });
    return dense;
  });
  assert.deepEqual(shuffled.map(csrToDense), expected);
});

test("csrsOnThreads on 1 to 4 threads: csrsFromEntries's matrices and the transposes asked for, sorted entries or shuffled", async () => {
  const rand = random(5);
  const nRows = 40, nCols = 25, masks = [0b0010, 0b1000, 0b0011, 0b1010, 0b1111], transposed = [true, false, false, true, false];
  const rows: number[] = [], cols: number[] = [], classes: number[] = [];
  for (let r = 0; r < nRows; r++) for (let c = 0; c < nCols; c++) if (rand() < 0.3) { rows.push(r); cols.push(c); classes.push(Math.floor(rand() * 4)); }
  const order = rows.map((_, i) => i).sort((a, b) => ((a * 7919) % rows.length) - ((b * 7919) % rows.length));
  for (const entries of [rows.map((_, i) => i), order]) {
    const r = Int32Array.from(entries, (i) => rows[i]), c = Int32Array.from(entries, (i) => cols[i]), k = Uint8Array.from(entries, (i) => classes[i]);
    const expected = csrsFromEntries(r, c, nRows, nCols, k, masks);
    for (const threads of [1, 2, 3, 4]) {
      const got = await csrsOnThreads(r, c, nRows, nCols, k, masks, transposed, threads);
      got.forEach(([X, Xt], m) => {
        assert.deepEqual([X.nRows, X.nCols, [...X.indptr], [...X.indices], [...X.data]], [nRows, nCols, [...expected[m].indptr], [...expected[m].indices], [...expected[m].data]], `matrix ${m} on ${threads} threads`);
        assert.deepEqual(Xt && csrToDense(Xt), transposed[m] ? csrToDense(transpose(expected[m])) : undefined, `transpose ${m} on ${threads} threads`);
      });
    }
  }
});

test("a 0/1 matrix's data, its transpose's and its unit rows' equal those computed from explicit ones", () => {
  const X = csrFromEntries(Int32Array.from([0, 0, 1, 2, 2, 2]), Int32Array.from([1, 3, 0, 0, 1, 3]), 4, 4);
  const explicit = csrFromDense(csrToDense(X));
  assert.deepEqual([...X.data], [1, 1, 1, 1, 1, 1]);
  assert.deepEqual([...normalizeRows(transpose(X)).data], [...normalizeRows(transpose(explicit)).data]);
  assert.deepEqual(csrToDense(normalizeRows(transpose(X))), csrToDense(normalizeRows(transpose(explicit))));
});
