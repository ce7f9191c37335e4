import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { DEFAULTS } from "../lib/params";
import { loadModel, lockModelDir, MODEL_FORMAT, ModelDirError, ModelFormatError, type SavedModel, saveModel, writeNeighbours } from "../lib/model-io";
import { findModelDir } from "../lib/serve";
import { writeSynthetic } from "../lib/synthetic";
import { train } from "../lib/train";

const cli = path.join(__dirname, "..", "lib", "cli.js");
const modelIo = path.join(__dirname, "..", "lib", "model-io.js");
const fresh = (name: string) => mkdtempSync(path.join(tmpdir(), `${name}-`));

/** Four movies, three users: small enough to corrupt by hand, valid in every check. */
function tinyModel(createdAt = "tiny"): SavedModel {
  return {
    manifest: { createdAt, fit: "train", params: { ...DEFAULTS }, input: { source: "tiny", files: [] }, counts: { movies: 4 }, timings: {}, metrics: {} },
    movies: { movieId: Int32Array.of(10, 20, 30, 40), title: ["Amélie (2001)", "B (1999)", "C (2000)", "D (2010)"], genres: ["Comedy|Romance", "Drama", "", "(no genres listed)"], likes: Int32Array.of(2, 2, 1, 0) },
    neighbours: { indptr: Int32Array.of(0, 2, 3, 4, 4), indices: Int32Array.of(1, 2, 0, 0), sims: Float32Array.of(0.9, 0.5, 0.9, 0.5) },
    users: { userId: Int32Array.of(1, 2, 5), indptr: Int32Array.of(0, 2, 4, 5), indices: Int32Array.of(0, 1, 0, 2, 3), liked: Uint8Array.of(1, 1, 1, 1, 0) },
  };
}

/** Names and contents of everything under `dir`, symlinks as their targets: to show nothing was touched. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, name), info = lstatSync(p);
    out[name] = info.isSymbolicLink() ? `-> ${readlinkSync(p)}` : info.isFile() ? readFileSync(p, "base64") : "dir";
  }
  return out;
}

test("save then load gives back every array and the manifest; a fresh path gets a plain folder, replacements swap a symlink and keep one version", async () => {
  const root = fresh("model");
  await writeSynthetic(path.join(root, "data"), "small", 5);
  const trained = await train(path.join(root, "data"), { k: 20 });
  const dir = path.join(root, "model");
  await saveModel(dir, trained);
  const loaded = await loadModel(dir);
  assert.deepEqual(loaded.neighbours, trained.neighbours);
  assert.deepEqual(loaded.users, trained.users);
  assert.deepEqual(loaded.movies, trained.movies);
  assert.deepEqual(loaded.popular, trained.popular);
  assert.deepEqual(loaded.manifest.metrics, trained.manifest.metrics);
  assert.equal(loaded.manifest.params.k, 20);
  assert.equal(loaded.manifest.format, MODEL_FORMAT);
  assert.match(loaded.manifest.arrays["neighbours.sims"].sha256, /^[0-9a-f]{64}$/);
  assert.ok(!lstatSync(dir).isSymbolicLink() && lstatSync(dir).isDirectory(), "a fresh path: the staged folder renamed into place");
  assert.deepEqual(readdirSync(root).sort(), ["data", "model"]);

  await saveModel(dir, { ...trained, manifest: { ...trained.manifest, createdAt: "second" } });
  assert.equal((await loadModel(dir)).manifest.createdAt, "second");
  const second = readlinkSync(dir);
  await saveModel(dir, { ...trained, manifest: { ...trained.manifest, createdAt: "third" } });
  assert.equal((await loadModel(dir)).manifest.createdAt, "third");
  assert.notEqual(readlinkSync(dir), second);
  assert.deepEqual(readdirSync(root).sort(), ["data", "model", "model.versions"]);
  assert.deepEqual(readdirSync(`${dir}.versions`).map((v) => `model.versions/${v}`), [readlinkSync(dir)]);
  rmSync(root, { recursive: true });
});

test("item 1: a data folder, a project folder, a file, a foreign symlink or a model dir holding other files is refused and left untouched", async () => {
  const root = fresh("refuse");
  const data = path.join(root, "data");
  mkdirSync(data);
  writeFileSync(path.join(data, "ratings.csv"), "userId,movieId,rating,timestamp\n1,10,4,0\n");
  writeFileSync(path.join(data, "movies.csv"), "movieId,title,genres\n10,A (1999),Drama\n");
  writeFileSync(path.join(root, "notes.txt"), "mine");
  const withExtra = path.join(root, "with-extra");
  await saveModel(path.join(root, "src"), tinyModel());
  cpSync(realpathSync(path.join(root, "src")), withExtra, { recursive: true });
  writeFileSync(path.join(withExtra, "notes.txt"), "mine too");
  symlinkSync("data", path.join(root, "link-to-data"));
  const before = snapshot(root);
  for (const [target, why] of [[data, /a directory that holds no model\.json of this project/], [root, /no model\.json/], [path.join(root, "notes.txt"), /it is a file/],
    [withExtra, /or holds other files too/], [path.join(root, "link-to-data"), /a symlink to data, which holds no model/]] as const) {
    await assert.rejects(saveModel(target, tinyModel()), (e: Error) => e instanceof ModelDirError && e.message.startsWith(`refusing to replace ${target}: `) && why.test(e.message));
  }
  assert.deepEqual(snapshot(root), before);

  // The CLI refuses before reading any data: `--model-dir .` from a project folder, `--model-dir` equal to `--data`.
  for (const [cwd, modelDir] of [[root, "."], [root, "data"]]) {
    const { code, stdout, stderr } = await promisify(execFile)(process.execPath, [cli, "train", "--data", data, "--model-dir", modelDir], { cwd }).then((r) => ({ code: 0, ...r }), (e) => e);
    assert.equal(code, 1, stdout);
    assert.match(stderr, new RegExp(`^error: refusing to replace ${modelDir.replace(".", "\\.")}: `));
    assert.doesNotMatch(stdout + stderr, /training on|    at /);
  }
  assert.deepEqual(snapshot(root), before);

  const empty = path.join(root, "empty");
  mkdirSync(empty);
  await saveModel(empty, tinyModel("into an empty dir"));
  assert.equal((await loadModel(empty)).manifest.createdAt, "into an empty dir");
  rmSync(root, { recursive: true });
});

test("item 1: an old-layout model directory (plain, format 1) is ours and is replaced; loading it asks to retrain", async () => {
  const root = fresh("migrate");
  await saveModel(path.join(root, "src"), tinyModel("old"));
  const dir = path.join(root, "model");
  cpSync(realpathSync(path.join(root, "src")), dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(path.join(dir, "model.json"), "utf8"));
  for (const entry of Object.values(manifest.arrays) as Record<string, unknown>[]) delete entry.sha256;
  writeFileSync(path.join(dir, "model.json"), JSON.stringify({ ...manifest, format: 1 }));
  await assert.rejects(loadModel(dir), new ModelFormatError(`${dir}/model.json: format 1, expected ${MODEL_FORMAT}: written by an older version, train the model again`));
  await saveModel(dir, tinyModel("new"));
  assert.ok(lstatSync(dir).isSymbolicLink());
  assert.equal((await loadModel(dir)).manifest.createdAt, "new");
  assert.deepEqual(readdirSync(root).sort(), ["model", "model.versions", "src"]);
  assert.deepEqual(readdirSync(`${dir}.versions`).map((v) => `model.versions/${v}`), [readlinkSync(dir)]);
  rmSync(root, { recursive: true });
});

test("item 2: a model with no neighbours is never written, and the good one stays", async () => {
  const root = fresh("empty");
  const dir = path.join(root, "model");
  await saveModel(dir, tinyModel("good"));
  const empty = tinyModel("empty");
  empty.neighbours = { indptr: new Int32Array(5), indices: new Int32Array(0), sims: new Float32Array(0) };
  await assert.rejects(saveModel(dir, empty), /^ModelDirError: refusing to write a model with no neighbours to .*\/model: /);
  const nan = tinyModel("nan");
  nan.neighbours.sims[1] = NaN;
  await assert.rejects(saveModel(dir, nan), /model to write to .*: neighbours\.sims: movie 0's sim NaN at 1 is not finite/);
  assert.equal((await loadModel(dir)).manifest.createdAt, "good");
  rmSync(root, { recursive: true });
});

/** Copies the model at `src` to a new plain directory, edits its arrays (checksums recomputed unless `keepSums`) and manifest. */
function corrupted(src: string, edit: { arrays?: Record<string, (bytes: Buffer) => void>; manifest?: (m: any) => void; keepSums?: boolean }): string {
  const dir = fresh("corrupt");
  cpSync(realpathSync(src), dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(path.join(dir, "model.json"), "utf8"));
  for (const [name, change] of Object.entries(edit.arrays ?? {})) {
    const file = path.join(dir, `${name}.bin`), bytes = readFileSync(file);
    change(bytes);
    writeFileSync(file, bytes);
    if (!edit.keepSums) manifest.arrays[name].sha256 = createHash("sha256").update(bytes).digest("hex");
  }
  edit.manifest?.(manifest);
  writeFileSync(path.join(dir, "model.json"), JSON.stringify(manifest));
  return dir;
}

const int32At = (i: number, v: number) => (b: Buffer) => b.writeInt32LE(v, 4 * i);
const float32At = (i: number, v: number) => (b: Buffer) => b.writeFloatLE(v, 4 * i);

test("items 3, 5, 6: corrupted or hostile model files are refused with the file and the fault named", async () => {
  const root = fresh("corrupt-src");
  const src = path.join(root, "model");
  await saveModel(src, tinyModel());
  const cases: [string, Parameters<typeof corrupted>[1] | ((dir: string) => void), RegExp][] = [
    ["flipped byte", { arrays: { "users.indices": (b) => void (b[5] ^= 1) }, keepSums: true }, /users\.indices\.bin: SHA-256 differs from model\.json's/],
    ["NaN sim", { arrays: { "neighbours.sims": float32At(0, NaN) } }, /neighbours\.sims\.bin: movie 0's sim NaN at 0 is not finite, > 0/],
    ["Infinity sim", { arrays: { "neighbours.sims": float32At(2, Infinity) } }, /neighbours\.sims\.bin: movie 1's sim Infinity at 2/],
    ["negative sim", { arrays: { "neighbours.sims": float32At(3, -0.5) } }, /neighbours\.sims\.bin: movie 2's sim -0\.5 at 3/],
    ["sims out of order", { arrays: { "neighbours.sims": float32At(1, 0.95) } }, /neighbours\.sims\.bin: movie 0's sim 0\.9499.* at 1 is not finite, > 0 and at most the one before/],
    ["neighbour out of range", { arrays: { "neighbours.indices": int32At(1, 4) } }, /neighbours\.indices\.bin: movie 0's neighbour 4 at 1 is out of range/],
    ["neighbour is itself", { arrays: { "neighbours.indices": int32At(0, 0) } }, /neighbours\.indices\.bin: movie 0's neighbour 0 at 0 is out of range or itself/],
    ["indptr decreasing", { arrays: { "neighbours.indptr": int32At(2, 1) } }, /neighbours\.indptr\.bin: decreases at 2 \(2 then 1\)/],
    ["indptr not starting at 0", { arrays: { "users.indptr": int32At(0, 1) } }, /users\.indptr\.bin: starts at 1, expected 0/],
    ["indptr not ending at the length", { arrays: { "neighbours.indptr": int32At(4, 5) } }, /neighbours\.indptr\.bin: ends at 5, expected neighbours\.indices's length 4/],
    ["users' movies unordered", { arrays: { "users.indices": (b) => { b.writeInt32LE(1, 0); b.writeInt32LE(0, 4); } } }, /users\.indices\.bin: user 0's movie 0 at 1 is out of range or not after the one before/],
    ["user's movie out of range", { arrays: { "users.indices": int32At(4, -1) } }, /users\.indices\.bin: user 2's movie -1 at 4/],
    ["liked flag 2", { arrays: { "users.liked": (b) => void (b[4] = 2) } }, /users\.liked\.bin: value 2 at 4 is not in \[0, 2\)/],
    ["movieIds unsorted", { arrays: { "movies.movieId": int32At(1, 5) } }, /movies\.movieId\.bin: value 5 at 1 is not above the one before/],
    ["title not UTF-8", { arrays: { "movies.title.bytes": (b) => void (b[2] = 0xff) } }, /movies\.title\.bytes\.bin: string 0 \(bytes 0\.\.14\) is not valid UTF-8/],
    ["relabelled dtype", { manifest: (m) => (m.arrays["neighbours.sims"].type = "int32") }, /model\.json: array "neighbours\.sims" has type "int32", expected "float32"/],
    ["traversal array name", { manifest: (m) => (m.arrays["../x"] = { type: "uint8", length: 1, sha256: "0".repeat(64) }) }, /model\.json: unknown array "\.\.\/x" \(expected movies\.movieId, /],
    ["negative length", { manifest: (m) => (m.arrays["users.liked"].length = -1) }, /model\.json: array "users\.liked" has length -1, expected a count >= 0/],
    ["length not matching the file", { manifest: (m) => (m.arrays["users.liked"].length = 4) }, /users\.liked\.bin: expected 4 bytes \(4 uint8\), got 5/],
    ["missing arrays", { manifest: (m) => delete m.arrays }, /model\.json: expected an object "arrays", got none/],
    ["missing array entry", { manifest: (m) => delete m.arrays["users.liked"] }, /model\.json: no entry for array "users\.liked"/],
    ["no checksum", { manifest: (m) => delete m.arrays["users.liked"].sha256 }, /model\.json: array "users\.liked" has no SHA-256/],
    ["not a model.json of ours", { manifest: (m) => delete m.format }, /model\.json: no format field/],
    ["unknown fit", { manifest: (m) => (m.fit = "some") }, /model\.json: expected "fit" to be "all" or "train", got "some"/],
    ["empty model.json", (dir) => writeFileSync(path.join(dir, "model.json"), ""), /model\.json: empty$/],
    ["invalid JSON", (dir) => writeFileSync(path.join(dir, "model.json"), "{\"format\": 2,"), /model\.json: not valid JSON \(/],
    ["JSON array", (dir) => writeFileSync(path.join(dir, "model.json"), "[]"), /model\.json: expected a JSON object/],
    ["missing .bin", (dir) => rmSync(path.join(dir, "neighbours.sims.bin")), /neighbours\.sims\.bin: missing$/],
    ["truncated .bin", (dir) => truncateSync(path.join(dir, "neighbours.sims.bin"), 10), /neighbours\.sims\.bin: expected 16 bytes \(4 float32\), got 10/],
    ["a .bin that is a directory", (dir) => { rmSync(path.join(dir, "users.liked.bin")); mkdirSync(path.join(dir, "users.liked.bin")); }, /users\.liked\.bin: expected 5 bytes \(5 uint8\), got not a file/],
  ];
  for (const [what, edit, expected] of cases) {
    const dir = typeof edit === "function" ? corrupted(src, {}) : corrupted(src, edit);
    if (typeof edit === "function") edit(dir);
    await assert.rejects(loadModel(dir), (e: Error) => {
      assert.ok(e instanceof ModelFormatError, `${what}: ${e.stack}`);
      assert.ok(e.message.startsWith(dir), `${what}: ${e.message}`);
      assert.match(e.message, expected, what);
      return true;
    }, what);
    rmSync(dir, { recursive: true });
  }
  const file = path.join(root, "file");
  writeFileSync(file, "x");
  await assert.rejects(loadModel(file), new ModelFormatError(`${file}: expected a model directory, got a file`));
  const nothing = path.join(root, "nothing");
  await assert.rejects(loadModel(nothing), new ModelFormatError(`${nothing}/model.json: missing, there is no model at ${nothing} (train one first)`));
  rmSync(root, { recursive: true });
});

test("item 5: the server never becomes ready on a corrupted model: it logs the file and exits 1", async () => {
  const root = fresh("serve-bad");
  await saveModel(path.join(root, "model"), tinyModel());
  const dir = corrupted(path.join(root, "model"), { arrays: { "neighbours.sims": float32At(0, NaN) }, keepSums: true });
  const { code, stdout } = await promisify(execFile)(process.execPath, [cli, "serve", "--model-dir", dir, "--port", "0", "--quiet"], { timeout: 20_000 })
    .then((r) => ({ code: 0, ...r }), (e) => e);
  assert.equal(code, 1);
  assert.match(stdout, /cannot load the model: .*neighbours\.sims\.bin: SHA-256 differs/);
  rmSync(root, { recursive: true });
  rmSync(dir, { recursive: true });
});

test("item 4: findModelDir finds a loadable model under a symlinked model dir and under a plain copy of it (the Azure job output)", async () => {
  const root = fresh("find");
  await saveModel(path.join(root, "outputs", "model"), tinyModel("first"));
  assert.ok(!lstatSync(path.join(root, "outputs", "model")).isSymbolicLink(), "a job's fresh output folder gets a plain folder");
  assert.equal(await findModelDir(path.join(root, "outputs")), path.join(root, "outputs", "model"));
  await saveModel(path.join(root, "outputs", "model"), tinyModel("found"));
  assert.equal(await findModelDir(path.join(root, "outputs")), path.join(root, "outputs", "model"));
  assert.equal((await loadModel(await findModelDir(path.join(root, "outputs")))).manifest.createdAt, "found");
  cpSync(path.join(root, "outputs"), path.join(root, "copy"), { recursive: true, dereference: true });
  assert.equal(await findModelDir(path.join(root, "copy")), path.join(root, "copy", "model"));
  assert.equal((await loadModel(await findModelDir(path.join(root, "copy")))).manifest.createdAt, "found");
  rmSync(path.join(root, "outputs", "model"));
  assert.equal((await loadModel(await findModelDir(path.join(root, "outputs")))).manifest.createdAt, "found", "an upload that skips symlinks");
  rmSync(root, { recursive: true });
});

/** A child process saving `tinyModel(createdAt)` to `dir` that stops at `step` (reporting it) until killed. */
function writerStoppedAt(src: string, dir: string, step: string): Promise<ChildProcess> {
  const script = `const io = require(${JSON.stringify(modelIo)});
    io.loadModel(${JSON.stringify(src)}).then((m) => io.saveModel(${JSON.stringify(dir)}, { ...m, manifest: { ...m.manifest, createdAt: "child" } }, {
      onStep: (step) => step === ${JSON.stringify(step)} && new Promise(() => { console.log("at " + step); setInterval(() => {}, 1000); }),
    })).catch((e) => { console.error(e.message); process.exit(1); });`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => String(d).includes(`at ${step}`) && resolve(child));
    child.on("exit", (code) => reject(new Error(`writer exited with ${code} before ${step}`)));
  });
}

/** Kills `child` with SIGKILL and waits for its exit; one that has already exited (a fast run) resolves at once. */
const killed = (child: ChildProcess) => new Promise<void>((resolve) => {
  if (child.exitCode !== null || child.signalCode !== null) return resolve();
  child.once("exit", () => resolve()).kill("SIGKILL");
});

test("item 4: a writer killed -9 at any step leaves a loadable model at the path; the next save cleans what it left", async () => {
  const root = fresh("kill");
  const src = path.join(root, "src");
  await saveModel(src, tinyModel("child"));
  for (const [layout, step, after] of [["symlink", "staged", "old"], ["symlink", "versioned", "old"], ["symlink", "linked", "old"], ["symlink", "swapped", "child"],
    ["directory", "linked", "old"]] as const) {
    const dir = path.join(root, `${layout}-${step}`);
    if (layout === "symlink") await saveModel(dir, tinyModel("older")); // the first save gives a plain folder, the second the symlink
    await saveModel(dir, tinyModel("old"));
    const child = await writerStoppedAt(src, dir, step);
    await killed(child);
    assert.equal((await loadModel(dir)).manifest.createdAt, after, `${layout} ${step}`);
    assert.ok(existsSync(`${dir}.lock`), "the killed writer's lock stays behind");
    const current = lstatSync(dir).isSymbolicLink() ? path.basename(readlinkSync(dir)) : "";
    const leftovers = [...readdirSync(root).filter((f) => f.startsWith(`${path.basename(dir)}.link-`)), ...readdirSync(`${dir}.versions`).filter((v) => v !== current)];
    assert.ok(leftovers.length > 0, `${layout} ${step}: the killed writer left staging, a link or a version`);

    await saveModel(dir, tinyModel("next"));
    assert.equal((await loadModel(dir)).manifest.createdAt, "next");
    const left = readdirSync(root).filter((f) => f.startsWith(`${path.basename(dir)}`)).sort();
    assert.deepEqual(left, [path.basename(dir), `${path.basename(dir)}.versions`], `${layout} ${step}: ${left}`);
    assert.deepEqual(readdirSync(`${dir}.versions`), [path.basename(readlinkSync(dir))]);
  }
  rmSync(root, { recursive: true });
});

test("item 4: a real train killed -9 around its save leaves a loadable model at the path, and the next train cleans up", async () => {
  const root = fresh("kill-train");
  const dir = path.join(root, "model");
  const env = { ...process.env, MOVIELENS_CACHE: path.join(root, "cache") };
  await saveModel(dir, tinyModel("old"));
  const args = [cli, "train", "--synthetic", "small", "--model-dir", dir, "--k", "5", "--threads", "1"];
  for (const delay of [0, 15, 40]) {
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    await new Promise<void>((resolve) => {
      child.stdout!.on("data", (d: Buffer) => /^coverage /m.test((out += d)) && resolve());
      child.on("exit", () => resolve());
    });
    await new Promise((resolve) => setTimeout(resolve, delay));
    await killed(child);
    const { manifest } = await loadModel(dir);
    assert.ok(manifest.createdAt === "old" || manifest.params.k === 5, `killed ${delay} ms after the metrics: ${manifest.createdAt}`);
  }
  const { stdout } = await promisify(execFile)(process.execPath, args, { env });
  assert.match(stdout, /model written to /);
  assert.deepEqual(readdirSync(root).sort(), ["cache", "model", "model.versions"]);
  assert.deepEqual(readdirSync(`${dir}.versions`), [path.basename(readlinkSync(dir))]);
  assert.equal((await loadModel(dir)).manifest.params.k, 5);
  rmSync(root, { recursive: true });
});

test("item 4: a second writer fails at once, naming the first one's pid; the CLI fails before reading any data", async () => {
  const root = fresh("lock");
  const src = path.join(root, "src"), dir = path.join(root, "model");
  await saveModel(src, tinyModel("child"));
  await saveModel(dir, tinyModel("old"));
  const child = await writerStoppedAt(src, dir, "staged");
  const locked = new RegExp(`${dir} is being written by process ${child.pid} \\(lock ${dir}\\.lock\\)`);
  await assert.rejects(lockModelDir(dir), (e: Error) => e instanceof ModelDirError && locked.test(e.message));
  await assert.rejects(saveModel(dir, tinyModel("second")), locked);
  const t0 = performance.now();
  const { code, stdout, stderr } = await promisify(execFile)(process.execPath, [cli, "train", "--synthetic", "small", "--model-dir", dir], { env: { ...process.env, MOVIELENS_CACHE: path.join(root, "cache") } })
    .then((r) => ({ code: 0, ...r }), (e) => e);
  assert.equal(code, 1);
  assert.match(stderr, new RegExp(`^error: ${dir} is being written by process ${child.pid} `));
  assert.equal(stdout, "");
  assert.equal(existsSync(path.join(root, "cache")), false, "no data was generated");
  assert.ok(performance.now() - t0 < 10_000);
  await killed(child);
  const release = await lockModelDir(dir);
  await saveModel(dir, tinyModel("after"));
  await release();
  assert.equal(existsSync(`${dir}.lock`), false);
  assert.equal((await loadModel(dir)).manifest.createdAt, "after");
  rmSync(root, { recursive: true });
});

test("item 4: a lock whose pid now belongs to a process started at another time (a reused pid) is taken over; the live writer's is not", { skip: !existsSync("/proc/self/stat") && "needs Linux /proc" }, async () => {
  const root = fresh("reused-pid");
  const dir = path.join(root, "model");
  const other = spawn("sleep", ["30"], { stdio: "ignore" }); // alive, and not a writer
  await new Promise((resolve) => other.once("spawn", resolve));
  const stat = readFileSync(`/proc/${other.pid}/stat`, "utf8");
  const start = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  try {
    for (const [content, taken] of [[`${other.pid} ${start}\n`, false], [`${other.pid}\n`, false], [`${other.pid} ${start - 1}\n`, true]] as const) {
      writeFileSync(`${dir}.lock`, content);
      if (taken) {
        const release = await lockModelDir(dir);
        assert.equal(readFileSync(`${dir}.lock`, "utf8"), `${process.pid} ${readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ")[19]}\n`);
        await release();
        assert.equal(existsSync(`${dir}.lock`), false);
      } else {
        await assert.rejects(lockModelDir(dir), new RegExp(`is being written by process ${other.pid} `), content);
        assert.equal(readFileSync(`${dir}.lock`, "utf8"), content, "a live writer's lock stays");
      }
    }
  } finally {
    other.kill("SIGKILL");
  }
  rmSync(root, { recursive: true });
});

test("item 1, 6: export-neighbours writes through a file beside the target and refuses a directory, a symlink and a missing folder", async () => {
  const root = fresh("export");
  await saveModel(path.join(root, "model"), tinyModel());
  const model = await loadModel(path.join(root, "model"));
  const out = path.join(root, "nb.tsv");
  writeFileSync(out, "old");
  assert.equal(await writeNeighbours(model, out), 3);
  assert.equal(readFileSync(out, "utf8"), "10\t20:0.900000,30:0.500000\n20\t10:0.900000\n30\t10:0.500000\n");
  mkdirSync(path.join(root, "adir"));
  writeFileSync(path.join(root, "adir", "keep"), "mine");
  symlinkSync("nb.tsv", path.join(root, "link.tsv"));
  const before = snapshot(root);
  await assert.rejects(writeNeighbours(model, path.join(root, "adir")), new Error(`${path.join(root, "adir")}: refusing to replace it, it is a directory`));
  await assert.rejects(writeNeighbours(model, path.join(root, "link.tsv")), /link\.tsv: refusing to replace it, it is not a regular file/);
  await assert.rejects(writeNeighbours(model, "/missing/dir/x.tsv"), new Error("/missing/dir/x.tsv: the directory /missing/dir does not exist"));
  assert.deepEqual(snapshot(root), before);
  const r = await promisify(execFile)(process.execPath, [cli, "export-neighbours", "--model-dir", path.join(root, "model"), "--out", "/missing/dir/x.tsv"]).then(() => undefined, (e) => e);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "error: /missing/dir/x.tsv: the directory /missing/dir does not exist\n");
  rmSync(root, { recursive: true });
});
