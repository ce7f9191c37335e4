import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { loadModel, type Model, saveModel } from "../lib/model-io";
import { historyOf, recommendForMovies, recommendForUser, similarTo } from "../lib/recommend";
import { BODY_LIMIT, buildApp, findModelDir } from "../lib/serve";
import { train } from "../lib/train";

const cli = path.join(__dirname, "..", "lib", "cli.js");
const NO_LIKES_USER = 500;

let tmp: string;
let modelDir: string;
let model: Model;
let app: FastifyInstance;
let base: string;

/** 30 movies, 60 users rating about 60% of them, and one user who disliked everything. */
async function writeFixture(dir: string): Promise<void> {
  const movies = ["movieId,title,genres"];
  for (let m = 1; m <= 30; m++) movies.push(`${m},"Movie ${m}, ""The"" (${1970 + m})",${m === 30 ? "(no genres listed)" : m % 2 ? "Drama|Comedy" : "Action"}`);
  const ratings = ["userId,movieId,rating,timestamp"];
  for (let u = 1; u <= 60; u++) {
    for (let m = 1; m <= 30; m++) if ((u * 7 + m * 3) % 5 > 1) ratings.push(`${u},${m},${1 + ((u + 2 * m) % 5)},0`);
  }
  for (let m = 1; m <= 5; m++) ratings.push(`${NO_LIKES_USER},${m},1.0,0`);
  await writeFile(path.join(dir, "movies.csv"), movies.join("\n") + "\n");
  await writeFile(path.join(dir, "ratings.csv"), ratings.join("\n") + "\n");
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "serve-test-"));
  await writeFixture(tmp);
  modelDir = path.join(tmp, "azureml-models", "movielens_recommender", "1");
  await saveModel(modelDir, await train(tmp));
  model = await loadModel(modelDir);
  app = buildApp(() => model, { logger: false });
  await app.listen({ host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});

after(async () => {
  await app.close();
  await rm(tmp, { recursive: true, force: true });
});

async function post(body: unknown, contentType = "application/json", url = base): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/score`, {
    method: "POST", headers: { "content-type": contentType }, body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

const plain = (x: unknown) => JSON.parse(JSON.stringify(x));

test("/live and /ready answer 200 once the model is loaded", async () => {
  for (const route of ["/live", "/ready"]) assert.equal((await fetch(`${base}${route}`)).status, 200);
});

test("before the model is loaded: /live 200, /ready and /score 503, then both 200", async () => {
  let loaded: Model | undefined;
  const early = buildApp(() => loaded, { logger: false });
  await early.listen({ host: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${(early.server.address() as { port: number }).port}`;
  try {
    assert.equal((await fetch(`${url}/live`)).status, 200);
    const ready = await fetch(`${url}/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { error: "model not loaded yet" });
    assert.equal((await post({ userId: 1 }, undefined, url)).status, 503);
    loaded = model;
    assert.equal((await fetch(`${url}/ready`)).status, 200);
    assert.deepEqual(await post({ userId: 1 }, undefined, url), { status: 200, json: plain(recommendForUser(model, 1, 10)) });
  } finally {
    await early.close();
  }
});

test("userId, movieIds and similarTo answer as recommend --user, recommend --movies and similar; n defaults to 10", async () => {
  const user = await post({ userId: 7 });
  assert.deepEqual(user, { status: 200, json: plain(recommendForUser(model, 7, 10)) });
  assert.equal(user.json.recommendations.length, 10);
  assert.equal(user.json.fallback, null);
  assert.deepEqual(Object.keys(user.json.recommendations[0]), ["movieId", "title", "genres", "score"]);
  assert.deepEqual(await post({ movieIds: [1, 5, 9], n: 4 }), { status: 200, json: plain(recommendForMovies(model, [1, 5, 9], 4)) });
  const similar = await post({ similarTo: 30, n: 3 });
  assert.deepEqual(similar, { status: 200, json: plain(similarTo(model, 30, 3)) });
  assert.equal(similar.json.recommendations.length, 3);
  assert.equal((await post({ similarTo: 2 })).json.recommendations.length, 10);
});

test("a known user plus movies just liked: the served refit model's history joins them, none of either recommended", async () => {
  assert.equal(model.manifest.fit, "all");
  const { rated } = historyOf(model, 7);
  const unseen = [...model.movies.movieId].filter((_, m) => !rated.includes(m)).slice(0, 2);
  const both = await post({ userId: 7, movieIds: unseen, n: 8 });
  assert.deepEqual(both, { status: 200, json: plain(recommendForUser(model, 7, 8, unseen)) });
  assert.notDeepEqual(both.json, plain(recommendForUser(model, 7, 8)));
  const excluded = new Set([...Array.from(rated, (m) => model.movies.movieId[m]), ...unseen]);
  for (const r of both.json.recommendations) assert.ok(!excluded.has(r.movieId), `movie ${r.movieId} was rated or just liked`);
  assert.equal((await post({ movieIds: unseen, userId: 7, n: 8 })).status, 200);
  assert.equal((await post({ userId: 7, movieIds: [424242] })).status, 400);
  assert.equal((await post({ batch: [{ userId: 7, movieIds: unseen, n: 8 }] })).json.results[0].recommendations.length, 8);
});

test("a known user with no likes gets the popular movies, flagged, none of those they rated", async () => {
  const { status, json } = await post({ userId: NO_LIKES_USER, n: 5 });
  assert.equal(status, 200);
  assert.equal(json.fallback, "popular");
  assert.equal(json.recommendations.length, 5);
  for (const r of json.recommendations) assert.ok(r.movieId > 5, `rated movie ${r.movieId} recommended`);
});

test("a batch answers in request order, unknown ids as per-item errors", async () => {
  const batch = [{ similarTo: 3, n: 2 }, { userId: 999 }, { userId: 12, n: 3 }, { movieIds: [2, 77, 88] }, { movieIds: [4] }];
  const { status, json } = await post({ batch });
  assert.equal(status, 200);
  assert.deepEqual(json, {
    results: [
      plain(similarTo(model, 3, 2)),
      { error: "unknown userId: 999", status: 404 },
      plain(recommendForUser(model, 12, 3)),
      { error: "unknown movieIds: 77, 88", status: 400 },
      plain(recommendForMovies(model, [4], 10)),
    ],
  });
});

test("bad input gets a 4xx with {error} saying what is wrong", async () => {
  const cases: [string, unknown, number, RegExp][] = [
    ["malformed JSON", '{"userId": 1,', 400, /not valid JSON/],
    ["empty body", "", 400, /empty/],
    ["a JSON array", [1], 400, /^body must be object, got \[1\]$/],
    ["null", null, 400, /^body must be object, got null$/],
    ["no request field", {}, 400, /^body must have one of the fields userId, movieIds, similarTo, batch, got none$/],
    ["only n", { n: 3 }, 400, /must have one of the fields .*, got n$/],
    ["userId as a string", { userId: "7" }, 400, /^body.userId must be integer, got "7"$/],
    ["fractional userId", { userId: 7.5 }, 400, /^body.userId must be integer, got 7.5$/],
    ["movieIds not a list", { movieIds: 1 }, 400, /^body.movieIds must be array, got 1$/],
    ["a movie id as a string", { movieIds: [1, "2"] }, 400, /^body.movieIds\[1\] must be integer, got "2"$/],
    ["an extra field", { userId: 7, verbose: true }, 400, /^body has an unexpected field "verbose" \(expected only userId, movieIds, n\)$/],
    ["two request kinds", { userId: 7, similarTo: 1 }, 400, /unexpected field "similarTo"/],
    ["n = 0", { userId: 7, n: 0 }, 400, /^body.n must be >= 1, got 0$/],
    ["n = 101", { similarTo: 1, n: 101 }, 400, /^body.n must be <= 100, got 101$/],
    ["n as a string", { similarTo: 1, n: "5" }, 400, /^body.n must be integer, got "5"$/],
    ["unknown userId", { userId: 123456 }, 404, /^unknown userId: 123456$/],
    ["unknown movieIds", { movieIds: [1, 777, 888] }, 400, /^unknown movieIds: 777, 888$/],
    ["unknown similarTo", { similarTo: 999 }, 400, /^unknown movieId: 999$/],
    ["empty batch", { batch: [] }, 400, /^body.batch must NOT have fewer than 1 items, got 0 items$/],
    ["batch of 101", { batch: Array(101).fill({ userId: 7 }) }, 400, /^body.batch must NOT have more than 100 items, got 101 items$/],
    ["nested batch", { batch: [{ userId: 7 }, { batch: [{ userId: 7 }] }] }, 400, /^body.batch\[1\] must have one of the fields userId, movieIds, similarTo, got batch$/],
    ["bad n in a batch item", { batch: [{ userId: 7 }, { userId: 7, n: 500 }] }, 400, /^body.batch\[1\].n must be <= 100, got 500$/],
    ["n beside batch", { batch: [{ userId: 7 }], n: 3 }, 400, /unexpected field "n" \(expected only batch\)/],
    ["prototype poisoning", '{"userId": 7, "__proto__": {"n": 1}}', 400, /not valid JSON/],
  ];
  for (const [name, body, status, message] of cases) {
    const res = await post(body);
    assert.equal(res.status, status, `${name}: ${JSON.stringify(res.json)}`);
    assert.deepEqual(Object.keys(res.json), ["error"], name);
    assert.match(res.json.error, message, name);
  }
});

test("a wrong or missing content type gets 415, an unknown route 404, both as {error}", async () => {
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/xml"]) {
    const res = await post({ userId: 7 }, type);
    assert.equal(res.status, 415);
    assert.deepEqual(res.json, { error: `expected content-type application/json, got ${type}` });
  }
  const untyped = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
    const req = http.request(`${base}/score`, { method: "POST" }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c)).on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject).end('{"userId": 7}');
  });
  assert.deepEqual(untyped, { status: 415, body: JSON.stringify({ error: "expected content-type application/json, got none" }) });
  const missing = await fetch(`${base}/scores`);
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: "no route GET /scores; expected GET /live, GET /ready or POST /score" });
});

test("a body over 1.5 MiB gets 413, and the server goes on answering", async () => {
  const big = JSON.stringify({ movieIds: Array(Math.ceil(BODY_LIMIT / 2)).fill(1) });
  assert.ok(big.length > BODY_LIMIT);
  assert.deepEqual(await post(big), { status: 413, json: { error: `expected a body of at most ${BODY_LIMIT} bytes (1.5 MiB), got more` } });
  const justUnder = JSON.stringify({ movieIds: Array(Math.floor((BODY_LIMIT - 20) / 2)).fill(1) });
  assert.ok(justUnder.length <= BODY_LIMIT);
  assert.equal((await post(justUnder)).status, 200);
  assert.equal((await post({ userId: 7 })).status, 200);
});

test("300 concurrent requests of every kind each get their own answer", async () => {
  const requests: ({ userId: number; n: number } | { movieIds: number[] } | { similarTo: number })[] = Array.from({ length: 300 }, (_, i) =>
    i % 3 === 0 ? { userId: 1 + (i % 60), n: 1 + (i % 20) } : i % 3 === 1 ? { movieIds: [1 + (i % 30), 1 + ((i * 7) % 30)] } : { similarTo: 1 + (i % 30) });
  const expected = requests.map((r) =>
    "userId" in r ? recommendForUser(model, r.userId, r.n) : "movieIds" in r ? recommendForMovies(model, r.movieIds, 10) : similarTo(model, r.similarTo, 10));
  const answers = await Promise.all(requests.map((r) => post(r)));
  answers.forEach((a, i) => assert.deepEqual(a, { status: 200, json: plain(expected[i]) }, JSON.stringify(requests[i])));
});

test("findModelDir finds the shallowest model.json under AZUREML_MODEL_DIR", async () => {
  assert.equal(await findModelDir(path.join(tmp, "azureml-models")), modelDir);
  assert.equal(await findModelDir(modelDir), modelDir);
  const empty = path.join(tmp, "empty", "deep");
  await mkdir(empty, { recursive: true });
  await assert.rejects(findModelDir(path.dirname(empty)), /expected a model.json under .*empty, found none/);
});

test("serve from AZUREML_MODEL_DIR logs one JSON line per request and on SIGTERM finishes in-flight requests, then exits 0", async () => {
  const child = spawn(process.execPath, [cli, "serve", "--port", "0"], {
    env: { ...process.env, AZUREML_MODEL_DIR: path.join(tmp, "azureml-models") }, stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = once(child, "close");
  const lines: string[] = [];
  const waiters: [RegExp, (line: string) => void][] = [];
  readline.createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    for (const [i, [pattern, resolve]] of waiters.entries()) if (pattern.test(line)) waiters.splice(i, 1), resolve(line);
  });
  const logged = (pattern: RegExp) => new Promise<string>((resolve) => {
    const seen = lines.find((l) => pattern.test(l));
    if (seen) resolve(seen);
    else waiters.push([pattern, resolve]);
  });
  try {
    const port = Number(/listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(await logged(/listening at/))![1]);
    await logged(/model loaded from .*movielens_recommender.1 /);
    const url = `http://127.0.0.1:${port}`;
    assert.equal((await post({ userId: 23 }, undefined, url)).status, 200);
    assert.equal((await post({ userId: 987654321 }, undefined, url)).status, 404);

    const body = JSON.stringify({ userId: 7, n: 2 });
    const agent = new http.Agent({ keepAlive: true });
    const response = new Promise<{ status?: number; connection?: string; json: unknown }>((resolve, reject) => {
      const req = http.request(`${url}/score`, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": body.length } }, (res) => {
        let data = "";
        res.on("data", (c) => (data += c)).on("end", () => resolve({ status: res.statusCode, connection: res.headers.connection, json: JSON.parse(data) }));
      });
      req.on("error", reject);
      req.write(body.slice(0, 5));
      setTimeout(() => void (async () => {
        child.kill("SIGTERM");
        await logged(/SIGTERM: closing/);
        await assert.rejects(fetch(`${url}/live`), "a new connection after SIGTERM must be refused");
        req.end(body.slice(5));
      })().catch(reject), 100);
    });
    assert.deepEqual(await response, { status: 200, connection: "close", json: plain(recommendForUser(model, 7, 2)) });
    assert.deepEqual(await exited, [0, null]);
    agent.destroy();
  } finally {
    child.kill("SIGKILL");
  }
  const requestLines = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
  assert.deepEqual(requestLines.map(({ method, route, status }) => [method, route, status]), [
    ["POST", "/score", 200], ["POST", "/score", 404], ["POST", "/score", 200],
  ]);
  for (const l of requestLines) assert.equal(typeof l.ms, "number");
  assert.doesNotMatch(lines.join("\n"), /userId|987654321/, "request bodies must not be logged");
});

test("serve exits 1 with a clear log line when the model cannot be loaded, with one process or two workers", async () => {
  for (const workers of ["1", "2"]) {
    const child = spawn(process.execPath, [cli, "serve", "--port", "0", "--workers", workers, "--model-dir", path.join(tmp, "no-such-model")], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (c) => (out += c));
    child.stderr!.on("data", (c) => (out += c));
    assert.deepEqual(await once(child, "close"), [1, null], out);
    assert.match(out, /cannot load the model: .*no-such-model.model\.json/);
  }
});

test("serve --workers 2: two processes on one port answer alike, and SIGTERM stops both, exit 0", async () => {
  const child = spawn(process.execPath, [cli, "serve", "--port", "0", "--workers", "2", "--quiet", "--model-dir", modelDir], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = once(child, "close");
  try {
    let out = "";
    child.stdout!.on("data", (c) => (out += c));
    while ((out.match(/model loaded/g) ?? []).length < 2) await once(child.stdout!, "data");
    const ports = new Set([...out.matchAll(/listening at http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => m[1]));
    assert.equal(ports.size, 1, out);
    const url = `http://127.0.0.1:${[...ports][0]}`;
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => post({ userId: 1 + (i % 60) }, undefined, url)));
    answers.forEach((a, i) => assert.deepEqual(a, { status: 200, json: plain(recommendForUser(model, 1 + (i % 60), 10)) }));
    child.kill("SIGTERM");
    assert.deepEqual(await exited, [0, null]);
    assert.equal((out.match(/SIGTERM: closing/g) ?? []).length, 2, out);
  } finally {
    child.kill("SIGKILL");
  }
});
