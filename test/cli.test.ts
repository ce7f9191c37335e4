import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const cli = path.join(__dirname, "..", "lib", "cli.js");
const root = mkdtempSync(path.join(tmpdir(), "cli-"));
const modelDir = path.join(root, "model");

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], { env: { ...process.env, MOVIELENS_CACHE: root } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test("train on the small synthetic set, then recommend, similar and export-neighbours", async () => {
  const trained = await run("train", "--synthetic", "small", "--model-dir", modelDir, "--k", "50");
  assert.equal(trained.code, 0, trained.stderr);
  for (const stage of ["ingest", "genres", "merge", "sample", "split", "encode", "csr", "neighbours", "evaluate"]) {
    assert.match(trained.stdout, new RegExp(`^${stage} +\\d+\\.\\d\\d s`, "m"));
  }
  assert.match(trained.stdout, /^precision@10 +0\.\d{4} +0\.\d{4}$/m);
  assert.match(trained.stdout, /^users +1,000 +1,000$/m);

  const manifest = JSON.parse(readFileSync(path.join(modelDir, "model.json"), "utf8"));
  assert.equal(manifest.params.k, 50);
  assert.equal(manifest.input.source, "synthetic:small");
  assert.deepEqual(Object.keys(manifest.metrics), ["precision", "recall", "hitrate", "total_hits", "total_liked", "users", "ndcg", "coverage", "map", "mrr"]);
  assert.equal(manifest.counts.ratings, 120_000);

  const rec = await run("recommend", "--model-dir", modelDir, "--user", "1", "--n", "3");
  assert.equal(rec.code, 0, rec.stderr);
  const lines = rec.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 3);
  assert.match(lines[0], /^ {2}1\. +\d+ +\d+\.\d{4} {2}.+ \(\d{4}\) {2}\[.*\]$/);

  const out = path.join(root, "neighbours.tsv");
  const exported = await run("export-neighbours", "--model-dir", modelDir, "--out", out);
  assert.equal(exported.code, 0, exported.stderr);
  const tsv = readFileSync(out, "utf8").trim().split("\n");
  assert.equal(tsv.length, Number(/^(\d+) movies with neighbours/.exec(exported.stdout)![1]));
  for (const line of tsv.slice(0, 50)) {
    assert.match(line, /^\d+\t\d+:[01]\.\d{6}(,\d+:[01]\.\d{6})*$/);
    const sims = line.split("\t")[1].split(",").map((p) => Number(p.split(":")[1]));
    assert.ok(sims.length <= 50 && sims.every((s, i) => i === 0 || s <= sims[i - 1]), line);
  }
  const [first, second] = tsv.map((l) => l.split("\t")[0]);
  const byMovies = await run("recommend", "--model-dir", modelDir, "--movies", `${first},${second}`, "--n", "2");
  assert.equal(byMovies.code, 0, byMovies.stderr);
  assert.equal(byMovies.stdout.trim().split("\n").length, 2);

  const similar = await run("similar", "--model-dir", modelDir, "--movie", String(first), "--n", "4");
  assert.equal(similar.code, 0, similar.stderr);
  assert.equal(similar.stdout.trim().split("\n").length, 4);

  assert.equal(similar.stdout.trimEnd().split("\n")[0].split(/ +/)[2], tsv[0].split("\t")[1].split(":")[0]);
});

test("train --similarity rp3beta and tune record their choice in model.json", async () => {
  const rp3 = path.join(root, "rp3");
  const trained = await run("train", "--similarity", "rp3beta", "--beta", "0.4", "--k", "30", "--model-dir", rp3, "--threads", "2");
  assert.equal(trained.code, 0, trained.stderr);
  assert.match(trained.stdout, /neighbours .* rp3beta beta=0\.4 alpha=1, k=30/);
  const manifest = JSON.parse(readFileSync(path.join(rp3, "model.json"), "utf8"));
  assert.deepEqual([manifest.params.similarity, manifest.params.beta, manifest.params.k], ["rp3beta", 0.4, 30]);

  const tuned = path.join(root, "tuned");
  const t = await run("tune", "--model-dir", tuned, "--similarities", "cosine,rp3beta", "--shrinks", "0,20", "--betas", "0.3", "--alphas", "1", "--ks", "10,40",
    "--factors", "4", "--regularizations", "30", "--confidences", "3", "--iterations", "3", "--weights", "0.5");
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^validation grid\nmodel +similarity +shrink +beta +alpha +k +factors +reg +conf +weight +precision@10/m);
  // popularity, 3 similarity settings x 2 k, 1 ALS, 1 blend
  assert.equal(t.stdout.match(/^(neighbours|popularity|als|blend) +(cosine|rp3beta|popularity|-) /gm)!.length, 9);
  const chosen = /chosen on validation: (.*); scored once on test/.exec(t.stdout)![1];
  const tunedManifest = JSON.parse(readFileSync(path.join(tuned, "model.json"), "utf8"));
  const { model, similarity, k, factors } = tunedManifest.params;
  assert.ok(model === "als" ? chosen.startsWith(`ALS factors=${factors}`) : chosen.includes(`${similarity} `) && chosen.includes(`k=${k}`), chosen);
  assert.equal(tunedManifest.tuning.length, 9);
  const bad = await run("tune", "--similarities", "jaccard");
  assert.match(bad.stderr, /unknown similarity "jaccard"/);
});

test("bad arguments and unknown ids fail with a clear message", async () => {
  const k0 = await run("train", "--k", "0");
  assert.notEqual(k0.code, 0);
  assert.match(k0.stderr, /--k must be an integer >= 1, got "0"/);
  const both = await run("train", "--data", "x", "--synthetic", "small");
  assert.match(both.stderr, /cannot be used with/);
  const missing = await run("train", "--data", path.join(root, "nowhere"));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: .*nowhere.*movies\.csv/m);
  const noUser = await run("recommend", "--model-dir", modelDir);
  assert.match(noUser.stderr, /give --user ID or --movies ID,ID/);
  const unknown = await run("recommend", "--model-dir", modelDir, "--user", "987654");
  assert.match(unknown.stderr, /unknown userId: 987654/);
  const unknownMovies = await run("recommend", "--model-dir", modelDir, "--movies", "1,987654,987655");
  assert.match(unknownMovies.stderr, /unknown movieIds: 987654, 987655/);
});

test("--help explains every command", async () => {
  const help = await run("--help");
  assert.equal(help.code, 0);
  for (const command of ["train", "tune", "recommend", "similar", "export-neighbours"]) assert.match(help.stdout, new RegExp(`^ +${command}`, "m"));
  const trainHelp = await run("train", "--help");
  assert.match(trainHelp.stdout, /--sample-users <n>/);
  assert.match(trainHelp.stdout, /--synthetic <preset>.*\(choices: "small", "medium", "32m"\)/s);
});
