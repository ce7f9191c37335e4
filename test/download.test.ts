import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import assert from "node:assert/strict";
import yazl from "yazl";
import { DownloadError, downloadMovieLens } from "../lib/download";

const RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.0,964981247\n2,1,5.0,964982224\n";
const MOVIES = 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,"American President, The (1995)",Comedy|Drama\n';

let tmp: string;
let server: http.Server;
let base: string;
let zip: Buffer;
/** What the server answers for each path, and what it was asked. */
const routes = new Map<string, { body: Buffer | string; cutAfter?: number }>();
const asked: string[] = [];

/** A zip laid out like GroupLens's: every file under `<name>/`. */
async function buildZip(name: string): Promise<Buffer> {
  const z = new yazl.ZipFile();
  z.addBuffer(Buffer.from(RATINGS), `${name}/ratings.csv`);
  z.addBuffer(Buffer.from(MOVIES), `${name}/movies.csv`);
  z.addBuffer(Buffer.from("Summary\n"), `${name}/README.txt`);
  z.end();
  const chunks: Buffer[] = [];
  for await (const chunk of z.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
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
