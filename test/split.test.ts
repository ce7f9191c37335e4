import { test } from "node:test";
import assert from "node:assert/strict";
import { fnv1a32 } from "../lib/hash";
import type { Ratings } from "../lib/ingest";
import { countSorted } from "../lib/csr";
import { distinct, encode, encodeAll, hashSample, indexOf, likedOf, sampleUsers, splitAll, splitRatings } from "../lib/split";

const ratings = (rows: [number, number, number][]): Ratings => ({
  userId: Int32Array.from(rows, (r) => r[0]),
  movieId: Int32Array.from(rows, (r) => r[1]),
  rating: Float32Array.from(rows, (r) => r[2]),
});

test("split on hand-checked rows (seed 42, testFraction 0.5)", () => {
  // fnv1a32("42:split:1:1") % 10000 = 5453 -> train; "42:split:1:3" -> 215 -> test; ...
  const r = ratings([[1, 1, 4], [1, 3, 4], [1, 6, 4], [2, 318, 3], [610, 168252, 5]]);
  assert.deepEqual([...splitRatings(r, 0.5, 42)], [0, 1, 1, 1, 0]);
  assert.deepEqual([...splitRatings(r, 0.02, 42)], [0, 0, 0, 0, 0]);
  assert.deepEqual([...splitRatings(r, 0.03, 42)], [0, 1, 0, 0, 0]);
  assert.deepEqual([...splitRatings(r, 1, 42)], [1, 1, 1, 1, 1]);
});

test("split equals the spec's string formula on random rows, any row order", () => {
  const rows: [number, number, number][] = [];
  for (let i = 0; i < 2000; i++) rows.push([1 + ((i * 7919) % 97), 1 + ((i * 104729) % 5003), 3]);
  for (const [seed, fraction, word] of [[42, 0.5, "split"], [7, 0.2, "split"], [42, 0.3, "valid"]] as const) {
    const got = splitRatings(ratings(rows), fraction, seed, word);
    rows.forEach(([u, m], i) => {
      assert.equal(got[i], fnv1a32(`${seed}:${word}:${u}:${m}`) % 10000 < fraction * 10000 ? 1 : 0, `row ${u},${m}`);
    });
  }
});

test("split equals the spec's string formula for ids of every length, in a digit table or beyond it", () => {
  const movieIds = [0, 1, 9, 10, 99, 100, 12345, 999999, 1048575, 1048576, 87654321, 2147483647];
  for (const extra of [[], [2 ** 20]]) { // the largest id decides whether the digit table is used
    const rows = [...movieIds, ...extra].flatMap((m) => [[5, m, 4], [123456, m, 4]] as [number, number, number][]);
    const got = splitRatings(ratings(rows.filter(([, m]) => extra.length > 0 || m < 2 ** 20)), 0.5, 42);
    rows.filter(([, m]) => extra.length > 0 || m < 2 ** 20).forEach(([u, m], i) => assert.equal(got[i], fnv1a32(`42:split:${u}:${m}`) % 10000 < 5000 ? 1 : 0, `row ${u},${m}`));
  }
});

test("splitAll and encodeAll on 1 to 3 threads: likedOf's, splitRatings's and encode's results (and classes, liked + 2 * isTest), users cut between threads, small ids and large", async () => {
  const n = 3_300_000; // enough for 3 threads to share it
  for (const big of [0, 2 ** 27]) { // 2^27: no digit table (ids of 2^20 and more), no rank lookup (2^26 and more)
    const r: Ratings = { userId: new Int32Array(n), movieId: new Int32Array(n), rating: new Float32Array(n) };
    for (let i = 0; i < n; i++) {
      r.userId[i] = 1 + Math.floor(i / 1000); // runs of 1000: the cuts fall inside users
      r.movieId[i] = (i * 7919) % 200_000 + (i % 1000 === 999 ? big : 0);
      r.rating[i] = 0.5 * (1 + (i % 10));
    }
    const liked = likedOf(r, 3.5), isTest = splitRatings(r, 0.3, 7), classes = liked.map((l, i) => l + 2 * isTest[i]);
    for (const threads of [1, 2, 3]) {
      const got = await splitAll(r, { likeThreshold: 3.5, testFraction: 0.3, seed: 7 }, threads);
      assert.ok(Buffer.from(got.liked).equals(Buffer.from(liked)), `liked on ${threads} threads`);
      assert.ok(Buffer.from(got.isTest).equals(Buffer.from(isTest)), `isTest on ${threads} threads`);
      assert.ok(Buffer.from(got.classes).equals(Buffer.from(classes)), `classes on ${threads} threads`);
      assert.deepEqual(await encodeAll(r, threads), encode(r), `encoding on ${threads} threads`);
    }
  }
});

test("encodeAll with classes counts the matrices' entries by user and class in its pass (csr's count), or says the ratings are not sorted", async () => {
  const n = 3_300_000, perUser = 1000;
  const r: Ratings = { userId: new Int32Array(n), movieId: new Int32Array(n), rating: new Float32Array(n) };
  for (let i = 0; i < n; i++) {
    r.userId[i] = 10 + 3 * Math.floor(i / perUser); // the cuts between threads fall inside users
    r.movieId[i] = 5 + 2 * (i % perUser) + (Math.floor(i / perUser) % 3); // ascending within each user
  }
  const classes = Uint8Array.from({ length: n }, (_, i) => (i * 2654435761) % 4);
  const { userEnc, movieEnc, userIds } = encode(r);
  const expected = new Int32Array(8 * userIds.length);
  assert.ok(countSorted(userEnc, movieEnc, classes, 0, n, expected));
  for (const threads of [2, 3]) {
    const { perRow, ...enc } = await encodeAll(r, threads, classes);
    assert.deepEqual(enc, encode(r));
    assert.ok(perRow && Buffer.from(perRow.buffer, perRow.byteOffset, perRow.byteLength).equals(Buffer.from(expected.buffer)), `counts on ${threads} threads`);
  }
  // out of order: a repeat inside a share, or a share that starts before the previous one ended
  for (const at of [7, Math.floor(n / 2)]) {
    const moved = { ...r, userId: r.userId.slice(), movieId: r.movieId.slice() };
    moved.movieId[at] = moved.movieId[at - 1];
    moved.userId[at] = moved.userId[at - 1];
    assert.equal((await encodeAll(moved, 2, classes)).perRow, null, `a repeat at ${at}`);
  }
  assert.equal((await encodeAll(r, 2)).perRow, undefined, "not asked");
});

test("hashSample keeps the ids with the smallest (hash, id)", () => {
  const ids = Int32Array.from({ length: 10 }, (_, i) => i + 1);
  assert.deepEqual([...hashSample(ids, 3, 42, "user")], [4, 6, 7]);
  assert.deepEqual([...hashSample(ids, 4, 7, "eval")], [1, 2, 8, 9]);
  assert.equal(hashSample(ids, 10, 42, "user"), ids);
});

test("distinct: the ascending distinct ids, whether they come in ascending runs (read off the runs) or not, small ids or large", () => {
  const cases = [[], [5], [1, 1, 2, 3, 3, 3, 9], [2, 1], [1, 1, 2, 1], [3, 3, 2 ** 27, 7, 7], [1, 2, 2 ** 27, 2 ** 27], [0, 0, 0]];
  for (const ids of cases) assert.deepEqual([...distinct(Int32Array.from(ids))], [...new Set(ids)].sort((a, b) => a - b), JSON.stringify(ids));
});

test("sampleUsers keeps every rating of the sampled users and nothing else", () => {
  const rows: [number, number, number][] = [];
  for (let u = 1; u <= 10; u++) for (let m = 1; m <= u; m++) rows.push([u, m, 4]);
  const kept = sampleUsers(ratings(rows), 3, 42);
  assert.deepEqual([...distinct(kept.userId)], [4, 6, 7]);
  assert.equal(kept.userId.length, 4 + 6 + 7);
  assert.equal(sampleUsers(ratings(rows), undefined, 42).userId.length, rows.length);
});

test("liked is rating >= threshold", () => {
  assert.deepEqual([...likedOf(ratings([[1, 1, 2.5], [1, 2, 3], [1, 3, 5], [1, 4, 0.5]]), 3)], [0, 1, 1, 0]);
});

test("encode ranks ids ascending, including sparse and large ids", () => {
  const enc = encode(ratings([[30, 296, 4], [5, 1, 4], [30, 1, 3], [100_000_000, 50, 2]]));
  assert.deepEqual([...enc.userIds], [5, 30, 100_000_000]);
  assert.deepEqual([...enc.userEnc], [1, 0, 1, 2]);
  assert.deepEqual([...enc.movieIds], [1, 50, 296]);
  assert.deepEqual([...enc.movieEnc], [2, 0, 0, 1]);
  assert.equal(indexOf(enc.movieIds, 50), 1);
  assert.equal(indexOf(enc.movieIds, 51), -1);
});
