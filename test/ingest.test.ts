import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ingest, MAX_LINE, MovieLensFormatError, readMovieLens, readMovies, readRatings } from "../lib/ingest";
import { mergeRatings, oneHotGenres } from "../lib/features";
import { likedOf } from "../lib/split";
import { syntheticDir } from "../lib/synthetic";

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
  assert.equal(info.sha256, createHash("sha256").update(readFileSync(file)).digest("hex"));
});

test("ingest returns before the SHA-256 of ratings.csv is taken; files then resolves to both files' digests", async () => {
  const data = path.join(dir, "ingest-dir");
  mkdirSync(data);
  writeFileSync(path.join(data, "ratings.csv"), "userId,movieId,rating,timestamp\n1,2,3.5,4\n5,6,0.5,7\n");
  writeFileSync(path.join(data, "movies.csv"), "movieId,title,genres\n2,A,Drama\n6,B,Comedy\n");
  const input = await ingest(data, { threads: 2 });
  assert.deepEqual([...input.ratings.movieId], [2, 6]);
  const digest = (name: string) => createHash("sha256").update(readFileSync(path.join(data, name))).digest("hex");
  assert.deepEqual(await input.files, [
    { file: "ratings.csv", bytes: 52, sha256: digest("ratings.csv") },
    { file: "movies.csv", bytes: 42, sha256: digest("movies.csv") },
  ]);
  assert.deepEqual((await readMovieLens(data, { threads: 1 })).files, await input.files);
});

test("an error in movies.csv ends the threads reading ratings.csv before ingest rejects (counts this process's threads)", { skip: !existsSync("/proc/self/task") && "needs Linux's /proc" }, async () => {
  const data = path.join(dir, "bad-movies");
  mkdirSync(data);
  writeFileSync(path.join(data, "ratings.csv"), "userId,movieId,rating,timestamp\n" + "1,2,3.5,1234567890\n".repeat(2_000_000));
  writeFileSync(path.join(data, "movies.csv"), "movieId,title,genres\nx,A,Drama\n");
  await readFile(path.join(data, "movies.csv")); // libuv's thread pool, started on first use, is there before counting
  const threads = () => readdirSync("/proc/self/task").length;
  const before = threads();
  await assert.rejects(ingest(data, { threads: 2 }), /movies\.csv:2: movieId is not a non-negative 32-bit integer: "x"$/);
  assert.equal(threads(), before, "the parse and SHA-256 threads have exited");
  let most = 0;
  for (let i = 0; i < 30; i++, await new Promise((resolve) => setTimeout(resolve, 10))) most = Math.max(most, threads());
  assert.equal(most, before, "and none started in the next 300 ms");
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
  await assert.rejects(readRatings(path.join(dir, "missing.csv")), /missing\.csv: no such file$/);
  await assert.rejects(readRatings(write("only-header.csv", "userId,movieId,rating,timestamp\r\n\n")), /only-header\.csv: no ratings after the header$/);
  await assert.rejects(readRatings(write("d7.csv", "userId,movieId,rating,timestamp\n1,2,3.1234567,10\n")), /d7\.csv:2: rating 3\.1234567 has more than 6 decimals$/);
});

test("ratings: blank lines at the end are fine", async () => {
  const { ratings } = await readRatings(write("r2.csv", "userId,movieId,rating,timestamp\n1,2,4,10\n\n\n"));
  assert.equal(ratings.userId.length, 1);
});

/** readRatings on 1 thread and on `threads`: the same columns, or the same error. */
async function sameOnThreads(file: string, threads: number[]): Promise<void> {
  const one = await readRatings(file, { threads: 1 }).catch((e: Error) => e);
  for (const t of threads) {
    const many = await readRatings(file, { threads: t }).catch((e: Error) => e);
    if (one instanceof Error || many instanceof Error) {
      assert.equal(String(many), String(one), `${path.basename(file)} on ${t} threads`);
      continue;
    }
    for (const column of ["userId", "movieId", "rating"] as const) assert.deepEqual(many.ratings[column], one.ratings[column], `${column} on ${t} threads`);
    assert.deepEqual(many.info, one.info);
  }
}

test("ratings on several threads: the same columns as on one, synthetic data and ml-latest-small", async () => {
  const small = path.join(await syntheticDir("small"), "ratings.csv");
  await sameOnThreads(small, [2, 3, 7]);
  const { ratings } = await readRatings(small, { threads: 3 });
  assert.equal(ratings.userId.length, 120_000);
});

const latestSmall = path.join(__dirname, "..", "..", "..", "shared", "data", "ml-latest-small", "ratings.csv");
test("ratings on several threads: ml-latest-small (needs ../shared)", { skip: !existsSync(latestSmall) && "../shared/data/ml-latest-small is absent" }, async () => {
  await sameOnThreads(latestSmall, [2, 5]);
  const { ratings } = await readRatings(latestSmall, { threads: 2 });
  assert.equal(ratings.userId.length, 100_836);
  assert.deepEqual([ratings.userId[100_835], ratings.movieId[100_835], ratings.rating[100_835]], [610, 170875, 3]);
});

// Two halves of the data, X then Y: on 2 threads the cut aims at the middle of the data, header + floor(|X + Y| / 2).
const HEADER = "userId,movieId,rating,timestamp\r\n";
const halves = (x: string[], y: string[]) => HEADER + x.join("") + y.join("");
const X = Array.from({ length: 50 }, (_, i) => `${i + 1},${100 + i},${(i % 10) / 2 + 0.5},1000000${String(i).padStart(3, "0")}\r\n`);

test("ratings on 2 threads: a cut just after a newline, and a cut between CR and LF", async () => {
  // |Y| = |X|: the middle is just after X's last newline.
  const atNewline = write("cut-newline.csv", halves(X, X.map((l) => l.replace(/^\d+/, "9"))));
  await sameOnThreads(atNewline, [2]);
  assert.equal((await readRatings(atNewline, { threads: 2 })).ratings.userId[50], 9);
  // |Y| = |X| - 2: the middle is X's last LF, just after its CR.
  const y = X.map((l, i) => (i === 0 ? l.replace("1000000000", "10000000") : l));
  const text = halves(X, y);
  assert.equal(text[HEADER.length + Math.floor((text.length - HEADER.length) / 2) - 1], "\r");
  const inCrlf = write("cut-crlf.csv", text);
  await sameOnThreads(inCrlf, [2, 3]);
  const { ratings } = await readRatings(inCrlf, { threads: 2 });
  assert.equal(ratings.userId.length, 100);
  assert.deepEqual([...ratings.movieId.subarray(48, 52)], [148, 149, 100, 101]);
});

test("ratings on several threads: an error in a later chunk names its line; the first error in the file wins", async () => {
  const bad = (lines: string[], at: number, line: string) => lines.map((l, i) => (i === at ? line : l));
  const late = write("late.csv", halves(X, bad(X, 40, "7,8,9.5,10\r\n")));
  for (const threads of [1, 2, 3]) await assert.rejects(readRatings(late, { threads }), /late\.csv:92: rating 9\.5 is outside 0\.5\.\.5$/);
  const two = write("two.csv", halves(bad(X, 3, "1,2\r\n"), bad(X, 40, "x,2,3,4\r\n")));
  for (const threads of [1, 2, 3]) await assert.rejects(readRatings(two, { threads }), /two\.csv:5: expected 4 fields .*got 2: "1,2"$/);
  // A blank line at the end of the first half, ratings after it in the second; and one followed only by blank lines.
  const blank = write("blank.csv", halves(bad(X, 49, "\r\n"), X));
  for (const threads of [1, 2, 3]) await assert.rejects(readRatings(blank, { threads }), /blank\.csv:51: blank line before more ratings$/);
  const blankThenBad = write("blank-bad.csv", halves(bad(X, 49, "\r\n"), bad(X, 0, "1,2,3\r\n")));
  for (const threads of [1, 2]) await assert.rejects(readRatings(blankThenBad, { threads }), /blank-bad\.csv:52: expected 4 fields/);
  const trailing = write("trailing.csv", halves(X, X.map(() => "\r\n")));
  await sameOnThreads(trailing, [2, 3]);
  const long = write("long-late.csv", halves(X, bad(X, 45, `1,2,3,${"4".repeat(MAX_LINE)}\r\n`)));
  for (const threads of [1, 2, 3]) await assert.rejects(readRatings(long, { threads }), new RegExp(`long-late\\.csv:97: line longer than ${MAX_LINE} bytes, starting "1,2,3,4{34}"$`));
});

test("ratings: short lines at the end of a chunk, where the room estimated from samples of its lines runs out", async () => {
  const long = Array.from({ length: 10_000 }, (_, i) => `${i},${i},4,${"1".repeat(300)}\n`);
  const short = Array.from({ length: 10_000 }, (_, i) => `${i % 9},${i % 7},${(i % 10) / 2 + 0.5},${i % 5}\n`);
  const file = write("outgrow.csv", `userId,movieId,rating,timestamp\n${long.join("")}${short.join("")}`);
  await sameOnThreads(file, [2, 3]);
  const { ratings } = await readRatings(file, { threads: 1 });
  assert.equal(ratings.userId.length, 20_000);
  assert.deepEqual([ratings.userId[19_999], ratings.movieId[19_999], ratings.rating[19_999]], [9_999 % 9, 9_999 % 7, 5]);
});

test("ratings on more threads than lines: tiny files, no final newline, nothing after the header", async () => {
  const tiny = write("tiny.csv", "userId,movieId,rating,timestamp\n1,2,3.5,4\n5,6,0.5,7");
  await sameOnThreads(tiny, [2, 8]);
  assert.deepEqual([...(await readRatings(tiny, { threads: 8 })).ratings.rating], [3.5, 0.5]);
  for (const [name, text] of [["h1.csv", "userId,movieId,rating,timestamp"], ["h2.csv", "userId,movieId,rating,timestamp\n"], ["h3.csv", "userId,movieId,rating,timestamp\r\n\r\n\n"]]) {
    await assert.rejects(readRatings(write(name, text), { threads: 4 }), new RegExp(`${name.replace(".", "\\.")}: no ratings after the header$`));
  }
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
  await assert.rejects(readMovies(write("m8.csv", header)), /m8\.csv: no movies after the header$/);
});

test("merge drops and counts ratings of movies missing from movies.csv", async () => {
  const { ratings } = await readRatings(write("r3.csv", "userId,movieId,rating,timestamp\n1,1,4,1\n1,2,4,1\n2,9,3,1\n2,1,1,1\n"));
  const { movies } = await readMovies(write("m7.csv", "movieId,title,genres\n1,A,Drama\n2,B,Comedy\n"));
  const merged = mergeRatings(ratings, movies);
  assert.equal(merged.dropped, 1);
  assert.deepEqual([...merged.ratings.movieId], [1, 2, 1]);
  assert.deepEqual([...merged.ratings.userId], [1, 1, 2]);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test("a file that cannot be read is named, with why", { skip: process.getuid?.() === 0 && "root reads any file" }, async () => {
  const locked = write("locked.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n");
  chmodSync(locked, 0);
  await assert.rejects(readRatings(locked), /locked\.csv: permission denied$/);
  await assert.rejects(readMovies(locked), /locked\.csv: permission denied$/);
});

test("movies: a byte that is not UTF-8 (a Latin-1 title) is refused with file and line", async () => {
  const latin1 = Buffer.concat([Buffer.from("movieId,title,genres\n1,A,Drama\n2,Am"), Buffer.from([0xe9]), Buffer.from("lie (2001),Comedy\n3,C,Drama\n")]);
  await assert.rejects(readMovies(write("latin1.csv", latin1)), /latin1\.csv:3: not valid UTF-8 \(Latin-1 or another encoding\?\): "2,Amélie \(2001\),Comedy"$/);
  const { movies } = await readMovies(write("utf8.csv", "movieId,title,genres\n1,Amélie (2001) 千と千尋,Comedy\n"));
  assert.deepEqual(movies.title, ["Amélie (2001) 千と千尋"]);
});

test("a line longer than MAX_LINE fails at once, quoting only its start; control characters are escaped", async () => {
  const longRatings = write("long-r.csv", `userId,movieId,rating,timestamp\n1,2,3,4\n${"7".repeat(5 << 20)}`);
  await assert.rejects(readRatings(longRatings), (e: Error) => {
    assert.match(e.message, new RegExp(`long-r\\.csv:3: line longer than ${MAX_LINE} bytes, starting "7{40}"$`));
    return true;
  });
  const longMovies = write("long-m.csv", `movieId,title,genres\n1,"${"a".repeat(2 << 20)}",Drama\n`);
  await assert.rejects(readMovies(longMovies), new RegExp(`long-m\\.csv:2: line longer than ${MAX_LINE} bytes, starting "1,"a{37}"$`));
  const ansi = write("ansi.csv", "\u001b[2J\u009b31muserId,movieId\n1,2,3,4\n");
  await assert.rejects(readRatings(ansi), (e: Error) => {
    assert.match(e.message, /ansi\.csv:1: expected header .*, got "\\u001b\[2J\\u009b31muserId,movieId"$/);
    assert.doesNotMatch(e.message, /[\u0000-\u001f\u007f-\u009f]/);
    return true;
  });
  const wide = write("wide.csv", `userId,movieId,rating,timestamp\n1,2,3,${"x".repeat(60_000)}\n`);
  await assert.rejects(readRatings(wide), (e: Error) => e.message.length < 300 && /wide\.csv:2: timestamp is not an integer: "x{60}\.\.\. \(59,940 more characters\)"$/.test(e.message));
});

test("likes compare exactly on the decimals in the file: 3.3 >= 3.3, for every threshold", async () => {
  const { ratings } = await readRatings(write("r33.csv", "userId,movieId,rating,timestamp\n1,1,3.3,0\n1,2,3.29,0\n1,3,3.31,0\n1,4,3.299999,0\n1,5,0.5,0\n1,6,5,0\n"));
  assert.deepEqual([...likedOf(ratings, 3.3)], [1, 0, 1, 0, 0, 1]);
  assert.deepEqual([...likedOf(ratings, 3.299999)], [1, 0, 1, 1, 0, 1]);
  assert.deepEqual([...likedOf(ratings, 3.2999991)], [1, 0, 1, 0, 0, 1]);
  assert.deepEqual([...likedOf(ratings, 0.5)], [1, 1, 1, 1, 1, 1]);
  assert.deepEqual([...likedOf(ratings, 5.0000001)], [0, 0, 0, 0, 0, 0]);
  // Every rating 0.5..5 in steps of 0.01 against every threshold 0.4..5.1 in steps of 0.01, and some with 6 decimals,
  // checked in integers (hundredths and millionths).
  const cents = Array.from({ length: 451 }, (_, i) => 50 + i);
  const lines = cents.map((c) => `1,${c},${Math.floor(c / 100)}.${String(c % 100).padStart(2, "0")},0`);
  const all = (await readRatings(write("cents.csv", `userId,movieId,rating,timestamp\n${lines.join("\n")}\n`))).ratings;
  const micros = [...Array.from({ length: 471 }, (_, i) => (40 + i) * 10_000), 3_299_999, 3_300_001, 999_999, 4_999_999, 5_000_001];
  for (const t of micros) {
    const threshold = Number(`${Math.floor(t / 1e6)}.${String(t % 1e6).padStart(6, "0")}`);
    const liked = likedOf(all, threshold);
    cents.forEach((c, i) => assert.equal(liked[i], c * 10_000 >= t ? 1 : 0, `rating ${lines[i]} with threshold ${threshold}`));
  }
});

const cli = path.join(__dirname, "..", "lib", "cli.js");

/** `train` on a directory holding `files`: its exit code, stderr and whether a model was written; killed after 20 s. */
async function trainOn(name: string, files: Record<string, string | (() => void)>, ...args: string[]): Promise<{ code: number | null; stderr: string; model: boolean; ms: number }> {
  const data = path.join(dir, name);
  mkdirSync(data);
  for (const [file, content] of Object.entries(files)) {
    if (typeof content === "string") writeFileSync(path.join(data, file), content);
    else content();
  }
  const modelDir = path.join(dir, `${name}-model`);
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, "train", "--data", data, "--model-dir", modelDir, "--threads", "1", ...args], { timeout: 20_000, killSignal: "SIGKILL" }, (error, _, stderr) => {
      resolve({ code: error ? (error.code as number | null) ?? null : 0, stderr, model: existsSync(modelDir), ms: performance.now() - t0 });
    });
  });
}

test("train refuses input with nothing to train on, naming the file and what is missing, and writes no model", async () => {
  const movies = "movieId,title,genres\n1,A,Drama\n2,B,Comedy\n3,C,Drama\n";
  const ratings = "userId,movieId,rating,timestamp\n";
  const cases: [string, Record<string, string | (() => void)>, RegExp, string[]?][] = [
    ["empty-ratings", { "movies.csv": movies, "ratings.csv": "" }, /empty-ratings.ratings\.csv: empty file, expected header/],
    ["header-ratings", { "movies.csv": movies, "ratings.csv": ratings }, /header-ratings.ratings\.csv: no ratings after the header/],
    ["header-movies", { "movies.csv": "movieId,title,genres\n", "ratings.csv": `${ratings}1,1,4,0\n` }, /header-movies.movies\.csv: no movies after the header/],
    ["unrated-movies", { "movies.csv": movies, "ratings.csv": `${ratings}1,7,4,0\n2,8,5,0\n` },
      /unrated-movies.movies\.csv: lists none of the movies in ratings\.csv \(all 2 ratings dropped at merge\)/],
    ["no-likes", { "movies.csv": movies, "ratings.csv": `${ratings}1,1,2.5,0\n2,2,1,0\n2,3,2.9,0\n` }, /no-likes.ratings\.csv: no rating is a like \(rating >= 3\) among the 3 kept/],
    ["no-train-likes", { "movies.csv": movies, "ratings.csv": `${ratings}1,1,4,0\n2,2,4,0\n` }, /no-train-likes.ratings\.csv: none of the 2 likes is in train \(testFraction 0.99\)/, ["--test-fraction", "0.99"]],
    ["ratings-dir", { "movies.csv": movies, "ratings.csv": () => mkdirSync(path.join(dir, "ratings-dir", "ratings.csv")) }, /ratings-dir: ratings\.csv is not a file/],
    ["dev-zero", { "movies.csv": movies, "ratings.csv": () => symlinkSync("/dev/zero", path.join(dir, "dev-zero", "ratings.csv")) },
      /dev-zero: ratings\.csv is not a file/],
    ["no-newline", { "movies.csv": movies, "ratings.csv": `${ratings}${"1".repeat(64 << 20)}` }, /no-newline.ratings\.csv:2: line longer than 65536 bytes/],
  ];
  for (const [name, files, message, args = []] of cases) {
    const r = await trainOn(name, files, ...args);
    assert.equal(r.code, 1, `${name}: exit ${r.code} after ${Math.round(r.ms)} ms, ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error: (--data )?${dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}.${message.source}`), name);
    assert.equal(r.stderr.split("\n").length, 2, `${name}: one line, no stack trace: ${r.stderr}`);
    assert.equal(r.model, false, `${name}: no model written`);
  }
});
