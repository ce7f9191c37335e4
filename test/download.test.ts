import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import yazl from "yazl";
import { DownloadError, downloadMovieLens, ZIP_CONTENTS } from "../lib/download";

const RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.0,964981247\n2,1,5.0,964982224\n";
const MOVIES = 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,"American President, The (1995)",Comedy|Drama\n';

let tmp: string;
let server: http.Server;
let base: string;
let zip: Buffer;
/** What the server answers for each path, and what it was asked. */
const routes = new Map<string, { body: Buffer | string; cutAfter?: number }>();
const asked: string[] = [];

/** A zip of these entries, in this order. */
async function zipOf(entries: [string, Buffer | string][]): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const [name, body] of entries) z.addBuffer(Buffer.from(body), name);
  z.end();
  const chunks: Buffer[] = [];
  for await (const chunk of z.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A zip laid out like GroupLens's: every file under `<name>/`. */
const buildZip = (name: string) => zipOf([[`${name}/ratings.csv`, RATINGS], [`${name}/movies.csv`, MOVIES], [`${name}/README.txt`, "Summary\n"]]);

/** The zip with every occurrence of the entry name `from` replaced by `to` (same length; yazl refuses hostile names). */
function renameEntry(zip: Buffer, from: string, to: string): Buffer {
  assert.equal(from.length, to.length);
  const out = Buffer.from(zip);
  for (let at = out.indexOf(from); at >= 0; at = out.indexOf(from, at + 1)) out.write(to, at, "latin1");
  return out;
}

const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");

/** Serves `zip` as the set, with its md5 in GroupLens's two-column form. */
function serve(name: string, body: Buffer, digest = md5(body), cutAfter?: number) {
  routes.set(`/${name}.zip`, { body, cutAfter });
  routes.set(`/${name}.zip.md5`, { body: `${digest}  ${name}.zip\n` });
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "download-test-"));
  zip = await buildZip("ml-latest-small");
  server = http.createServer((req, res) => {
    asked.push(req.url!);
    const route = routes.get(req.url!);
    if (!route) {
      res.writeHead(404).end("not here");
      return;
    }
    const body = Buffer.from(route.body);
    res.writeHead(200, { "content-length": body.length });
    if (route.cutAfter === undefined) res.end(body);
    else res.write(body.subarray(0, route.cutAfter), () => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

after(async () => {
  server.close();
  await rm(tmp, { recursive: true, force: true });
});

test("downloads, checks the md5 and unzips into DEST/<name>; a second run keeps it", async () => {
  serve("ml-latest-small", zip);
  const dest = path.join(tmp, "ok");
  const progress: number[] = [];
  const dir = await downloadMovieLens("ml-latest-small", { dest, baseUrl: base, onProgress: (done) => progress.push(done) });
  assert.equal(dir, path.join(dest, "ml-latest-small"));
  assert.equal(await readFile(path.join(dir, "ratings.csv"), "utf8"), RATINGS);
  assert.equal(await readFile(path.join(dir, "movies.csv"), "utf8"), MOVIES);
  assert.deepEqual(await readdir(dest), ["ml-latest-small"]);
  assert.deepEqual((await readdir(dir)).sort(), ["movies.csv", "ratings.csv"]);
  assert.equal(progress.at(-1), zip.length);
  asked.length = 0;
  await downloadMovieLens("ml-latest-small", { dest, baseUrl: base });
  assert.deepEqual(asked, []);
});

test("the CLI downloads from $MOVIELENS_BASE_URL", async () => {
  serve("ml-25m", await buildZip("ml-25m"));
  const dest = path.join(tmp, "cli");
  const { stdout } = await promisify(execFile)(process.execPath, [path.resolve(__dirname, "../lib/cli.js"), "download", "ml-25m", "--dest", dest],
    { env: { ...process.env, MOVIELENS_BASE_URL: base.slice(0, -1) } });
  assert.equal(stdout.trim(), `ml-25m is in ${path.join(dest, "ml-25m")}`);
  assert.equal(await readFile(path.join(dest, "ml-25m", "movies.csv"), "utf8"), MOVIES);
});

const leavesNothing = async (dest: string) => assert.deepEqual(existsSync(dest) ? await readdir(dest) : [], []);

test("a bad checksum fails and leaves nothing behind", async () => {
  serve("ml-latest-small", zip, "0123456789abcdef0123456789abcdef");
  const dest = path.join(tmp, "bad-md5");
  await assert.rejects(downloadMovieLens("ml-latest-small", { dest, baseUrl: base }), new DownloadError(
    `${base}ml-latest-small.zip: checksum mismatch: expected md5 0123456789abcdef0123456789abcdef (from ${base}ml-latest-small.zip.md5), got ${md5(zip)}`));
  await leavesNothing(dest);
});

test("a truncated zip (whose md5 matches) fails to unzip and leaves nothing behind", async () => {
  const truncated = zip.subarray(0, zip.length - 30);
  serve("ml-latest-small", truncated);
  const dest = path.join(tmp, "truncated");
  await assert.rejects(downloadMovieLens("ml-latest-small", { dest, baseUrl: base }), new RegExp(`^DownloadError: ${base}ml-latest-small.zip: not a readable zip: End of central directory record signature not found`));
  await leavesNothing(dest);
});

test("a connection cut mid-download fails and leaves nothing behind", async () => {
  serve("ml-latest-small", zip, md5(zip), 100);
  const dest = path.join(tmp, "cut");
  await assert.rejects(downloadMovieLens("ml-latest-small", { dest, baseUrl: base }),
    (e: Error) => e instanceof DownloadError && e.message.startsWith(`${base}ml-latest-small.zip: download failed after 100 of ${zip.length} bytes`));
  await leavesNothing(dest);
});

test("a missing .md5 says which URL answered what", async () => {
  routes.clear();
  await assert.rejects(downloadMovieLens("ml-32m", { dest: path.join(tmp, "none"), baseUrl: base }),
    new DownloadError(`GET ${base}ml-32m.zip.md5: expected 200, got 404 Not Found`));
});

test("only the needed entries, by exact name, are extracted: traversal and absolute names are skipped, a duplicate is refused", async () => {
  const hostile = renameEntry(await zipOf([
    ["XX/escape.csv", "escaped\n"],
    ["ABSOLUTE/tmp/x.csv", "escaped\n"],
    ["ml-latest-small/XX/ratings.csv", "userId,movieId,rating,timestamp\n9,9,1.0,1\n"],
    ["ml-latest-small/ratings.csv", RATINGS],
    ["ml-latest-small/movies.csv", MOVIES],
    ["ml-latest-small/tags.csv", "userId,movieId,tag,timestamp\n"],
  ]), "XX/", "../");
  const absolute = renameEntry(hostile, "ABSOLUTE/tmp/x.csv", "/".repeat(9) + "tmp/x.csv");
  serve("ml-latest-small", absolute);
  const dest = path.join(tmp, "hostile", "data");
  const dir = await downloadMovieLens("ml-latest-small", { dest, baseUrl: base });
  assert.deepEqual((await readdir(dir)).sort(), ["movies.csv", "ratings.csv"]);
  assert.equal(await readFile(path.join(dir, "ratings.csv"), "utf8"), RATINGS);
  assert.deepEqual(await readdir(path.join(tmp, "hostile")), ["data"]);
  assert.deepEqual(await readdir(dest), ["ml-latest-small"]);

  serve("ml-latest-small", await zipOf([["ml-latest-small/ratings.csv", RATINGS], ["ml-latest-small/movies.csv", MOVIES], ["ml-latest-small/ratings.csv", "userId\n"]]));
  const twice = path.join(tmp, "twice");
  await assert.rejects(downloadMovieLens("ml-latest-small", { dest: twice, baseUrl: base }),
    new DownloadError(`${base}ml-latest-small.zip: ml-latest-small/ratings.csv appears twice in the zip`));
  await leavesNothing(twice);
});

test("a zip bomb is refused at its declared size, and a lying header at the limit, leaving nothing", async () => {
  const limit = ZIP_CONTENTS["ml-latest-small"].entries["ratings.csv"];
  const bomb = await zipOf([["ml-latest-small/movies.csv", MOVIES], ["ml-latest-small/ratings.csv", Buffer.alloc(limit + 1)]]);
  assert.ok(bomb.length < 64 << 10, `${bomb.length}`);
  serve("ml-latest-small", bomb);
  const dest = path.join(tmp, "bomb");
  await assert.rejects(downloadMovieLens("ml-latest-small", { dest, baseUrl: base }), new DownloadError(
    `${base}ml-latest-small.zip: ml-latest-small/ratings.csv would unzip to ${limit + 1} bytes, more than the ${limit} this set's file may have`));
  await leavesNothing(dest);

  // the same bomb claiming 1,000 bytes in its local and central headers
  const lying = Buffer.from(bomb);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(limit + 1);
  for (let at = lying.indexOf(size); at >= 0; at = lying.indexOf(size, at + 1)) lying.writeUInt32LE(1000, at);
  serve("ml-latest-small", lying);
  await assert.rejects(downloadMovieLens("ml-latest-small", { dest, baseUrl: base }), new DownloadError(
    `${base}ml-latest-small.zip: ml-latest-small/ratings.csv: too many bytes in the stream. expected 1000. got at least 16384`));
  await leavesNothing(dest);

  serve("ml-latest-small", Buffer.alloc(ZIP_CONTENTS["ml-latest-small"].maxZip + 1));
  await assert.rejects(downloadMovieLens("ml-latest-small", { dest, baseUrl: base }), /larger than 8388608 bytes, the most this set's zip may be/);
  await leavesNothing(dest);
});

test("--dest never replaces a user's files: a folder with other files gets the set beside them; a partial set, a file, are refused untouched", async () => {
  serve("ml-latest-small", zip);
  const dest = path.join(tmp, "user");
  const mine = path.join(dest, "ml-latest-small");
  await mkdir(mine, { recursive: true });
  await writeFile(path.join(mine, "notes.txt"), "mine\n");
  await downloadMovieLens("ml-latest-small", { dest, baseUrl: base });
  assert.deepEqual((await readdir(mine)).sort(), ["movies.csv", "notes.txt", "ratings.csv"]);
  assert.equal(await readFile(path.join(mine, "notes.txt"), "utf8"), "mine\n");
  assert.equal(await readFile(path.join(mine, "movies.csv"), "utf8"), MOVIES);

  const partial = path.join(tmp, "partial");
  await mkdir(path.join(partial, "ml-latest-small"), { recursive: true });
  await writeFile(path.join(partial, "ml-latest-small", "ratings.csv"), "my own ratings\n");
  asked.length = 0;
  await assert.rejects(downloadMovieLens("ml-latest-small", { dest: partial, baseUrl: base }), new DownloadError(
    `${path.join(partial, "ml-latest-small")} holds ratings.csv but not movies.csv: left untouched; move it away or choose another --dest`));
  assert.deepEqual(asked, []);
  assert.deepEqual(await readdir(path.join(partial, "ml-latest-small")), ["ratings.csv"]);
  assert.equal(await readFile(path.join(partial, "ml-latest-small", "ratings.csv"), "utf8"), "my own ratings\n");

  const file = path.join(tmp, "file");
  await mkdir(file);
  await writeFile(path.join(file, "ml-latest-small"), "a file\n");
  await assert.rejects(downloadMovieLens("ml-latest-small", { dest: file, baseUrl: base }), /ml-latest-small exists and is not a folder I can read \(ENOTDIR\): left untouched/);
  assert.equal(await readFile(path.join(file, "ml-latest-small"), "utf8"), "a file\n");
});

test("staging left by a killed run is removed; other files in --dest are not", async () => {
  serve("ml-latest-small", zip);
  const dest = path.join(tmp, "stale");
  const dead = await new Promise<number>((resolve) => { const child = spawn(process.execPath, ["-e", ""]); child.on("exit", () => resolve(child.pid!)); });
  await mkdir(path.join(dest, `.ml-latest-small.partial-${dead}`), { recursive: true });
  await writeFile(path.join(dest, `.ml-latest-small.partial-${dead}`, "ratings.csv"), "half\n");
  await writeFile(path.join(dest, `.ml-latest-small.zip.partial-${dead}`), "half a zip");
  await writeFile(path.join(dest, ".ml-latest-small.partial-mine"), "mine\n");
  await writeFile(path.join(dest, `.ml-25m.partial-${dead}`), "another set's, left for its own run\n");
  await downloadMovieLens("ml-latest-small", { dest, baseUrl: base });
  assert.deepEqual((await readdir(dest)).sort(), [`.ml-25m.partial-${dead}`, ".ml-latest-small.partial-mine", "ml-latest-small"]);
});

const GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
  "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"];

/** ml-100k's zip from movies.csv and ratings.csv rows: the inverse of the conversion, u.data in a shuffled order. */
function ml100kZip(movies: string[][], ratings: string[][]): Promise<Buffer> {
  const item = movies.map(([id, title, genres]) => {
    assert.equal(Buffer.from(title, "latin1").toString("latin1"), title, "titles are Latin-1");
    const flags = GENRES.map((g) => (genres === "(no genres listed)" ? g === "unknown" : genres.split("|").includes(g)) ? "1" : "0");
    return `${id}|${title}|01-Jan-1995||http://us.imdb.com/M/title-exact?${encodeURIComponent(title)}|${flags.join("|")}\n`;
  }).join("");
  const shuffled = ratings.map((r, i) => ({ r, key: (i * 2654435761) % 4294967291 })).sort((a, b) => a.key - b.key);
  const data = shuffled.map(({ r: [user, movie, rating, timestamp] }) => `${user}\t${movie}\t${Number(rating)}\t${timestamp}\n`).join("");
  return zipOf([
    ["ml-100k/u.data", data],
    ["ml-100k/u.genre", `${GENRES.map((g, i) => `${g}|${i}`).join("\n")}\n\n`],
    ["ml-100k/u.item", Buffer.from(item, "latin1")],
    ["ml-100k/u.user", "1|24|M|technician|85711\n"],
    ["ml-100k/README", "SUMMARY\n"],
  ]);
}

test("ml-100k: u.data, u.item (Latin-1) and u.genre become ratings.csv and movies.csv", async () => {
  serve("ml-100k", await zipOf([
    ["ml-100k/u.data", "2\t1\t4\t881250949\n1\t3\t1\t891717742\n1\t1\t5\t878887116\n"],
    ["ml-100k/u.genre", `${GENRES.map((g, i) => `${g}|${i}`).join("\n")}\n\n`],
    ["ml-100k/u.item", Buffer.from([
      `1|Misérables, Les (1995)|01-Jan-1995||http://x|0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|0|0\n`,
      `2|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n`,
      `3|Good "Morning" (1971)|4-Feb-1971||http://x|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n`,
    ].join(""), "latin1")],
  ]));
  const dir = await downloadMovieLens("ml-100k", { dest: path.join(tmp, "ml-100k"), baseUrl: base });
  assert.deepEqual((await readdir(dir)).sort(), ["movies.csv", "ratings.csv"]);
  assert.equal(await readFile(path.join(dir, "ratings.csv"), "utf8"),
    "userId,movieId,rating,timestamp\n1,1,5.0,878887116\n1,3,1.0,891717742\n2,1,4.0,881250949\n");
  assert.equal(await readFile(path.join(dir, "movies.csv"), "utf8"),
    'movieId,title,genres\n1,"Misérables, Les (1995)",Drama|Musical\n2,unknown,(no genres listed)\n3,"Good ""Morning"" (1971)",(no genres listed)\n');

  serve("ml-100k", await zipOf([["ml-100k/u.data", "1\t1\t4.5\t1\n"], ["ml-100k/u.genre", "unknown|0\n"], ["ml-100k/u.item", "1|A (1995)|||x|0\n"]]));
  await assert.rejects(downloadMovieLens("ml-100k", { dest: path.join(tmp, "ml-100k-bad"), baseUrl: base }),
    new DownloadError(`${base}ml-100k.zip u.data:1: expected user id<TAB>item id<TAB>rating 1-5<TAB>timestamp, got "1\t1\t4.5\t1"`));
});

const SHARED = path.resolve(__dirname, "../../../shared/data/ml-100k");

test("ml-100k: the conversion gives ../shared/data/ml-100k byte for byte (all 100,000 ratings, 1,682 titles)", { skip: !existsSync(SHARED) && "needs ../shared/data/ml-100k" }, async () => {
  const ratingsCsv = await readFile(path.join(SHARED, "ratings.csv"));
  const moviesCsv = await readFile(path.join(SHARED, "movies.csv"));
  const movies: string[][] = parse(moviesCsv, { from_line: 2 });
  const ratings: string[][] = parse(ratingsCsv, { from_line: 2 });
  assert.deepEqual([movies.length, ratings.length], [1682, 100_000]);
  serve("ml-100k", await ml100kZip(movies, ratings));
  const dir = await downloadMovieLens("ml-100k", { dest: path.join(tmp, "ml-100k-shared"), baseUrl: base });
  assert.ok((await readFile(path.join(dir, "ratings.csv"))).equals(ratingsCsv), "ratings.csv differs");
  assert.ok((await readFile(path.join(dir, "movies.csv"))).equals(moviesCsv), "movies.csv differs");
});
