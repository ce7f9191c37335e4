import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import assert from "node:assert/strict";
import { BlobServiceClient, ContainerSASPermissions } from "@azure/storage-blob";
import { BlobDownloadError, blobService, describeLocation, fetchBlobs, parseBlobLocation } from "../lib/blob";
import { writeSynthetic } from "../lib/synthetic";

const ROOT = path.resolve(__dirname, "..", "..");
const KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const connectionString = (port: number) =>
  `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${KEY};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`;

let azurite: ChildProcess;
let port: number;
let tmp: string;
let dataDir: string;
let proxy: ReturnType<typeof cuttingProxy> extends Promise<infer P> ? P : never;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "blob-test-"));
  azurite = spawn(process.execPath, [path.join(ROOT, "node_modules/azurite/dist/src/blob/main.js"), "--blobHost", "127.0.0.1",
    "--blobPort", "0", "--location", path.join(tmp, "azurite"), "--silent", "--disableTelemetry", "--skipApiVersionCheck"],
  { stdio: ["ignore", "pipe", "inherit"] });
  port = await new Promise<number>((resolve, reject) => {
    let out = "";
    azurite.stdout!.on("data", (d: Buffer) => {
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec((out += d));
      if (m) resolve(Number(m[1]));
    });
    azurite.on("exit", (code) => reject(new Error(`azurite exited with ${code} before listening: ${out}`)));
  });
  dataDir = path.join(tmp, "small");
  await writeSynthetic(dataDir, "small", 7);
  const container = BlobServiceClient.fromConnectionString(connectionString(port)).getContainerClient("movielens");
  await container.create();
  for (const file of ["ratings.csv", "movies.csv"]) await container.getBlockBlobClient(`sets/small/${file}`).uploadFile(path.join(dataDir, file));
  proxy = await cuttingProxy(port);
});

after(async () => {
  proxy?.server.close();
  if (azurite && azurite.exitCode === null) await new Promise((resolve) => azurite.once("exit", resolve).kill("SIGTERM"));
  await rm(tmp, { recursive: true, force: true });
});

/** A TCP proxy in front of Azurite that records each request and, once armed, cuts the connection `cutAfter` bytes of responses later. */
async function cuttingProxy(target: number) {
  const state = { cutAfter: Infinity, sent: 0, cuts: 0, requests: [] as string[] };
  const server = net.createServer((client) => {
    const upstream = net.connect(target, "127.0.0.1");
    client.on("data", (d: Buffer) => {
      for (const m of d.toString("latin1").matchAll(/^(GET|HEAD|PUT) (\S+) HTTP[^]*?\r\n\r\n/gm)) {
        const range = /^x-ms-range: *(\S+)/im.exec(m[0])?.[1] ?? "";
        state.requests.push(`${m[1]} ${decodeURIComponent(m[2].split("?")[0])} ${range}`.trim());
      }
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      if (state.sent + d.length > state.cutAfter) {
        client.write(d.subarray(0, state.cutAfter - state.sent));
        state.cutAfter = Infinity;
        state.cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      state.sent += d.length;
      client.write(d);
    });
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, state, port: (server.address() as net.AddressInfo).port };
}

const via = (p: number) => blobService(parseBlobLocation(`http://127.0.0.1:${p}/devstoreaccount1/movielens/sets/small`), { AZURE_STORAGE_CONNECTION_STRING: connectionString(p) });

test("parses https, az:// and path-style locations, keeping a SAS out of the description", () => {
  assert.deepEqual(parseBlobLocation("https://acct.blob.core.windows.net/data/ml/latest-small?sv=1&sig=x"),
    { accountUrl: "https://acct.blob.core.windows.net", account: "acct", container: "data", prefix: "ml/latest-small", sas: "sv=1&sig=x" });
  assert.deepEqual(parseBlobLocation("az://acct/data/ml/"), parseBlobLocation("https://acct.blob.core.windows.net/data/ml"));
  const azurite = parseBlobLocation("http://127.0.0.1:10000/devstoreaccount1/c/p");
  assert.equal(azurite.accountUrl, "http://127.0.0.1:10000/devstoreaccount1");
  assert.equal(azurite.container, "c");
  assert.equal(describeLocation(parseBlobLocation("https://acct.blob.core.windows.net/data/ml?sig=secret")), "https://acct.blob.core.windows.net/data/ml");
  assert.throws(() => parseBlobLocation("https://acct.blob.core.windows.net/?sig=secret"), /expected a Blob location.*got "https:\/\/acct.blob.core.windows.net\/\?<SAS>"/);
});

test("item 3: a location whose host, account, container or prefix holds .., %2F.., backslashes, empty segments or control characters is refused", () => {
  for (const location of ["http://127.0.0.1:1/devstoreaccount1/movielens/..%2F..%2Fescape", "http://127.0.0.1:1/devstoreaccount1/movielens/sets%2F..%2F..%2F..", "http://127.0.0.1:1/devstoreaccount1/movielens/%2F..%2Fx",
    "http://127.0.0.1:1/devstoreaccount1/movielens/a%5C..%5C..%5Cx", "az://acct/c/%2Fetc/passwd", "az://acct/%2E%2E%2Fc/p", "http://../acct/c/p", "http://127.0.0.1:1/..%2F..%2Facct/c/p",
    "https://acct.blob.core.windows.net/c/p%00x?sig=secret"]) {
    assert.throws(() => parseBlobLocation(location), (e: Error) => e instanceof RangeError && /^Blob location ".*": the segment ".*" is not allowed/.test(e.message) && !e.message.includes("secret"), location);
  }
  assert.equal(parseBlobLocation("http://127.0.0.1:1/devstoreaccount1/movielens/sets/a..b/c.d").prefix, "sets/a..b/c.d");
});

test("item 3: fetchBlobs keeps to the cache folder whatever the location holds, and writes nothing elsewhere", async () => {
  const cache = path.join(tmp, "cache-escape");
  const saved = process.env.MOVIELENS_CACHE;
  process.env.MOVIELENS_CACHE = cache;
  try {
    const location = { ...parseBlobLocation(`http://127.0.0.1:${port}/devstoreaccount1/movielens/sets/small`), prefix: `${"../".repeat(6)}escape_fetch` };
    await assert.rejects(fetchBlobs(location, { service: via(port) }), /the segment "\.\." would lead outside the cache folder .*cache-escape\/blob$/);
    await assert.rejects(fetchBlobs(parseBlobLocation(`http://127.0.0.1:${port}/devstoreaccount1/movielens/sets/small`), { service: via(port), files: ["../ratings.csv"] }),
      /the file name "\.\.\/ratings\.csv" is not a plain name/);
  } finally {
    if (saved === undefined) delete process.env.MOVIELENS_CACHE;
    else process.env.MOVIELENS_CACHE = saved;
  }
  assert.equal(existsSync(path.join(tmp, "escape_fetch")), false);
});

test("item 3: train --data with ..%2F in the prefix fails with the location named and creates nothing outside the cache", async () => {
  const cli = path.join(ROOT, "dist/lib/cli.js");
  const env = { ...process.env, MOVIELENS_CACHE: path.join(tmp, "cache-cli"), AZURE_STORAGE_CONNECTION_STRING: connectionString(port) };
  const location = `http://127.0.0.1:${port}/devstoreaccount1/movielens/${"..%2F".repeat(6)}escape_blob`;
  const r = await promisify(execFile)(process.execPath, [cli, "train", "--data", location, "--model-dir", path.join(tmp, "m-escape")], { env }).then(() => undefined, (e) => e);
  assert.equal(r?.code, 1);
  assert.match(r.stderr, /^error: Blob location "http:.*escape_blob": the segment "\.\." is not allowed/);
  assert.equal(existsSync(path.join(tmp, "escape_blob")), false);
  assert.equal(existsSync(path.join(tmp, "m-escape")), false);
});

test("a connection string for another account is refused", () => {
  assert.throws(() => blobService(parseBlobLocation("az://other/c/p"), { AZURE_STORAGE_CONNECTION_STRING: connectionString(1) }),
    /for account "devstoreaccount1", expected the location's account "other"/);
});

test("train --data <blob location> gives the same model as the same files from a directory", async () => {
  const run = promisify(execFile);
  const cli = path.join(ROOT, "dist/lib/cli.js");
  const env = { ...process.env, MOVIELENS_CACHE: path.join(tmp, "cache"), AZURE_STORAGE_CONNECTION_STRING: connectionString(port) };
  const location = `http://127.0.0.1:${port}/devstoreaccount1/movielens/sets/small`;
  const fromBlob = await run(process.execPath, [cli, "train", "--data", location, "--model-dir", path.join(tmp, "m-blob")], { env });
  await run(process.execPath, [cli, "train", "--data", dataDir, "--model-dir", path.join(tmp, "m-dir")], { env });
  assert.match(fromBlob.stdout, new RegExp(`training on ${location}`));
  const manifest = async (m: string) => JSON.parse(await readFile(path.join(tmp, m, "model.json"), "utf8"));
  const [blob, dir] = [await manifest("m-blob"), await manifest("m-dir")];
  assert.deepEqual(blob.metrics, dir.metrics);
  assert.deepEqual(blob.input.files, dir.input.files);
  assert.equal(blob.input.source, location);
  for (const file of (await readdir(path.join(tmp, "m-dir"))).filter((f) => f.endsWith(".bin"))) {
    assert.deepEqual(await readFile(path.join(tmp, "m-blob", file)), await readFile(path.join(tmp, "m-dir", file)), file);
  }
});

test("a dropped connection resumes from its offset; a second run reuses the cache; a changed blob is fetched again", async () => {
  const dir = path.join(tmp, "resume");
  const service = via(proxy.port);
  const location = parseBlobLocation(`http://127.0.0.1:${proxy.port}/devstoreaccount1/movielens/sets/small`);
  proxy.state.requests = [];
  Object.assign(proxy.state, { cutAfter: 300_000, sent: 0 });
  const seen: number[] = [];
  await fetchBlobs(location, { dir, service, onProgress: (file, done) => file === "ratings.csv" && seen.push(done) });
  assert.equal(proxy.state.cuts, 1);
  const gets = proxy.state.requests.filter((r) => r.startsWith("GET /devstoreaccount1/movielens/sets/small/ratings.csv"));
  assert.equal(gets.length, 2, proxy.state.requests.join("\n"));
  const offset = Number(/bytes=(\d+)-/.exec(gets[1])?.[1]);
  assert.ok(offset > 0 && offset < 300_000, gets[1]);
  for (const file of ["ratings.csv", "movies.csv"]) {
    assert.deepEqual(await readFile(path.join(dir, file)), await readFile(path.join(dataDir, file)), file);
  }
  assert.deepEqual((await readdir(dir)).sort(), ["movies.csv", "movies.csv.etag", "ratings.csv", "ratings.csv.etag"]);

  proxy.state.requests = [];
  await fetchBlobs(location, { dir, service });
  assert.deepEqual(proxy.state.requests.map((r) => r.split(" ")[0]), ["HEAD", "HEAD"]);

  await service.getContainerClient("movielens").getBlockBlobClient("sets/small/movies.csv").upload("movieId,title,genres\n1,A (2000),Drama\n", 38);
  await fetchBlobs(location, { dir, service });
  assert.equal(await readFile(path.join(dir, "movies.csv"), "utf8"), "movieId,title,genres\n1,A (2000),Drama\n");
  await service.getContainerClient("movielens").getBlockBlobClient("sets/small/movies.csv").uploadFile(path.join(dataDir, "movies.csv"));
});

test("a drop with no retries left fails and leaves no file to be taken for complete", async () => {
  const dir = path.join(tmp, "no-retry");
  Object.assign(proxy.state, { cutAfter: 200_000, sent: 0 });
  const location = parseBlobLocation(`http://127.0.0.1:${proxy.port}/devstoreaccount1/movielens/sets/small`);
  await assert.rejects(fetchBlobs(location, { dir, service: via(proxy.port), retries: 0 }),
    (e: Error) => e instanceof BlobDownloadError && new RegExp(`^${describeLocation(location)}/ratings.csv: connection lost at byte \\d+ of \\d+ after 0 resumed attempts: `).test(e.message));
  assert.deepEqual(await readdir(dir), []);
});

test("a missing blob names the blob", async () => {
  const location = parseBlobLocation(`http://127.0.0.1:${port}/devstoreaccount1/movielens/sets/nothing`);
  await assert.rejects(fetchBlobs(location, { dir: path.join(tmp, "missing"), service: via(port) }),
    new BlobDownloadError(`http://127.0.0.1:${port}/devstoreaccount1/movielens/sets/nothing/ratings.csv: blob not found`));
  assert.equal(existsSync(path.join(tmp, "missing", "ratings.csv")), false);
});

test("a SAS in the location is used without any other credential", async () => {
  const container = via(port).getContainerClient("movielens");
  const sasUrl = await container.generateSasUrl({ permissions: ContainerSASPermissions.parse("r"), expiresOn: new Date(Date.now() + 3.6e6) });
  const [base, sas] = sasUrl.split("?");
  const dir = await fetchBlobs(parseBlobLocation(`${base}/sets/small?${sas}`), { dir: path.join(tmp, "sas"), files: ["movies.csv"] });
  assert.deepEqual(await readFile(path.join(dir, "movies.csv")), await readFile(path.join(dataDir, "movies.csv")));
});
