import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { MovieLensFormatError, readMovies, readRatings } from "../lib/ingest";
import { mergeRatings, oneHotGenres } from "../lib/features";

const dir = mkdtempSync(path.join(tmpdir(), "ingest-"));
const write = (name: string, text: string | Buffer) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

test("ratings: BOM, CRLF, no final newline, decimals and integers", async () => {
  const file = write("r1.csv", "\ufeffuserId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n1,1029,3,1260759179\r\n700,168252,5.0,1");
  const { ratings, info } = await readRatings(file);
  assert.deepEqual([...ratings.userId], [1, 1, 700]);
  assert.deepEqual([...ratings.movieId], [31, 1029, 168252]);
  assert.deepEqual([...ratings.rating], [2.5, 3, 5]);
  assert.equal(info.bytes, Buffer.byteLength("\ufeffuserId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n1,1029,3,1260759179\r\n700,168252,5.0,1"));
  assert.match(info.sha256, /^[0-9a-f]{64}$/);
});

test("ratings: lines across read chunks and a trailing newline", async () => {
  const lines = ["userId,movieId,rating,timestamp"];
  for (let i = 0; i < 400_000; i++) lines.push(`${i % 1000},${i},${(i % 10) / 2 + 0.5},${1000000000 + i}`);
  const { ratings } = await readRatings(write("big.csv", lines.join("\n") + "\n"));
  assert.equal(ratings.userId.length, 400_000);
  for (const i of [0, 1, 123_457, 299_999, 399_999]) {
    assert.equal(ratings.movieId[i], i);
    assert.equal(ratings.userId[i], i % 1000);
    assert.equal(ratings.rating[i], (i % 10) / 2 + 0.5);
  }
});

test("ratings: errors name the file, the line and what is wrong", async () => {
  const header = "userId,movieId,rating,timestamp\n";
  const cases: [string, RegExp][] = [
    ["1,2,3.5,10\n1,3,4\n", /:3: expected 4 fields \(userId,movieId,rating,timestamp\), got 3: "1,3,4"/],
    ["1,2,3.5,10\nx,3,4,10\n", /:3: userId is not a non-negative 32-bit integer: "x"/],
    ["1,2.5,3,10\n", /:2: movieId is not a non-negative 32-bit integer: "2.5"/],
    ["1,2,7,10\n", /:2: rating 7 is outside 0\.5\.\.5/],
    ["1,2,0,10\n", /:2: rating 0 is outside 0\.5\.\.5/],
    ["1,2,good,10\n", /:2: rating is not a number: "good"/],
    ["1,2,4,\n", /:2: timestamp is not an integer: ""/],
    ["1,2,4,10\n\n1,3,4,10\n", /:3: blank line before more ratings/],
    ["1,99999999999,4,10\n", /:2: movieId is not a non-negative 32-bit integer/],
  ];
  for (const [body, message] of cases) {
    const file = write("bad.csv", header + body);
    await assert.rejects(readRatings(file), (e: Error) => e instanceof MovieLensFormatError && e.message.startsWith(file) && message.test(e.message), body);
  }
  await assert.rejects(readRatings(write("h.csv", "user,movie,rating\n1,2,3\n")), /h\.csv:1: expected header "userId,movieId,rating,timestamp", got "user,movie,rating"/);
  await assert.rejects(readRatings(write("e.csv", "")), /e\.csv: empty file/);
  await assert.rejects(readRatings(path.join(dir, "missing.csv")), /ENOENT.*missing\.csv/);
});

test("ratings: blank lines at the end are fine", async () => {
  const { ratings } = await readRatings(write("r2.csv", "userId,movieId,rating,timestamp\n1,2,4,10\n\n\n"));
  assert.equal(ratings.userId.length, 1);
});

test("movies: quoted titles with commas, quotes and CRLF; genres one-hot sorted by name", async () => {
  const file = write("m1.csv", '\ufeffmovieId,title,genres\r\n1,Toy Story (1995),Adventure|Animation|Children\r\n11,"American President, The (1995)",Comedy|Drama|Romance\r\n' +
    '3,"""Great Performances"" Cats (1998)",Musical\r\n4,Nothing (2000),(no genres listed)');
  const { movies } = await readMovies(file);
  assert.deepEqual([...movies.movieId], [1, 11, 3, 4]);
  assert.deepEqual(movies.title, ["Toy Story (1995)", "American President, The (1995)", '"Great Performances" Cats (1998)', "Nothing (2000)"]);
  const { genres, onehot } = oneHotGenres(movies);
  assert.deepEqual(genres, ["Adventure", "Animation", "Children", "Comedy", "Drama", "Musical", "Romance"]);
  assert.deepEqual([...onehot.subarray(0, 7)], [1, 1, 1, 0, 0, 0, 0]);
  assert.deepEqual([...onehot.subarray(7, 14)], [0, 0, 0, 1, 1, 0, 1]);
  assert.deepEqual([...onehot.subarray(21, 28)], [0, 0, 0, 0, 0, 0, 0]);
});

test("movies: errors name the file and line", async () => {
  const header = "movieId,title,genres\n";
  await assert.rejects(readMovies(write("m2.csv", header + "1,A,Drama\n1,B,Comedy\n")), /m2\.csv:3: duplicate movieId 1 \(first on line 2\)/);
  await assert.rejects(readMovies(write("m3.csv", header + "1,A,Drama\nx,B,Comedy\n")), /m3\.csv:3: movieId is not a non-negative 32-bit integer: "x"/);
  await assert.rejects(readMovies(write("m4.csv", header + '1,A,Drama\n2,"B,Comedy\n')), /m4\.csv:\d+: .*Quote/i);
  await assert.rejects(readMovies(write("m5.csv", header + "1,A\n")), /m5\.csv:2: .*/);
  await assert.rejects(readMovies(write("m6.csv", "id,title,genres\n")), /m6\.csv:1: expected header "movieId,title,genres", got "id,title,genres"/);
});

test("merge drops and counts ratings of movies missing from movies.csv", async () => {
  const { ratings } = await readRatings(write("r3.csv", "userId,movieId,rating,timestamp\n1,1,4,1\n1,2,4,1\n2,9,3,1\n2,1,1,1\n"));
  const { movies } = await readMovies(write("m7.csv", "movieId,title,genres\n1,A,Drama\n2,B,Comedy\n"));
  const merged = mergeRatings(ratings, movies);
  assert.equal(merged.dropped, 1);
  assert.deepEqual([...merged.ratings.movieId], [1, 2, 1]);
  assert.deepEqual([...merged.ratings.userId], [1, 1, 2]);
});
