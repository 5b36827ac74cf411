// The SDK against a real `laurel serve`: events counted exactly once through cut
// connections, a killed game, 429 and 503; unlocks live within the bar, across a cut stream
// and a token that expires; refused events named; the game-server flavour.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Laurel, LaurelServer, LaurelError, mergeTokens } from "../dist/index.js";
import { startLaurel, startProxy, until } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
let laurel;

before(async () => {
  laurel = await startLaurel();
  await laurel.defineStat("bananas");
  await laurel.defineStat("coins");
  for (const n of [1, 2, 3, 4]) await laurel.defineAchievement(`COINS_${n}`, "coins", n);
});
after(async () => laurel.stop());

/** Flushes until nothing is queued (each flush that fails leaves its events for the next). */
async function drain(client, tries = 40) {
  for (let i = 0; i < tries; i++) {
    const result = await client.flush();
    if (result.pending === 0) return;
    await new Promise((r) => setTimeout(r, Math.min(1500, (result.error?.retryAfter ?? 0.1) * 1000)));
  }
  throw new Error(`still ${client.pending} queued`);
}

test("events are counted once when the connection drops mid-batch", async () => {
  const proxy = await startProxy(laurel.url);
  const errors = [];
  const withErrors = new Laurel({
    url: proxy.url,
    token: laurel.token("--player", "cut-ann"),
    flushIntervalMs: 0,
    batchSize: 5,
    onError: (e) => errors.push(e),
  });
  proxy.faults.cutAfterRequest = 2;
  for (let i = 0; i < 10; i++) withErrors.report("bananas", 1);
  await drain(withErrors);
  assert.equal(proxy.seen.cut, 2, "two answers were lost after the server took the batch");
  assert.ok(errors.some((e) => e instanceof LaurelError && e.type === "network"), "the game was told");
  const stats = await withErrors.stats({ waitForFlush: true });
  assert.equal(stats.stats.bananas, 10, "each event once");
  withErrors.close();
  proxy.close();
});

test("events queued when the game is killed are sent once when it runs again", async () => {
  const store = join(laurel.dir, "kill-queue.json");
  const env = { ...process.env, URL: laurel.url, TOKEN: laurel.token("--player", "kill-ann"), STORE: store, COUNT: "5" };
  const run = (mode, extra = {}) => {
    const child = spawn(process.execPath, [join(here, "child.mjs"), mode], { env: { ...env, ...extra } });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    return { child, out: () => out, exited: new Promise((r) => child.once("exit", r)) };
  };
  // Killed before sending.
  const queued = run("queue");
  await until("the queue on disk", () => queued.out().includes("queued"));
  queued.child.kill("SIGKILL");
  await queued.exited;
  const first = run("flush");
  await first.exited;
  assert.match(first.out(), /"sent":5,"pending":0/, first.out());
  assert.equal((await laurel.statsOf("kill-ann")).bananas, 5);

  // Killed with the batch sent and its answer not yet back: sent again, counted once.
  const proxy = await startProxy(laurel.url);
  proxy.faults.hold = 1;
  const sending = run("send", { URL: proxy.url });
  await until("the server answered the held batch", () => proxy.seen.held > 0);
  sending.child.kill("SIGKILL");
  await sending.exited;
  proxy.close();
  const again = run("flush");
  await again.exited;
  assert.match(again.out(), /"sent":5,"pending":0/, again.out());
  assert.equal((await laurel.statsOf("kill-ann")).bananas, 10, "5 + 5, the resent batch once");
});

test("429 from the server and 503 on the way are waited out, each event counted once", async () => {
  const limited = await startLaurel(["--max-batch", "50", "--player-events-burst", "50", "--player-events-per-minute", "1200"]);
  await limited.defineStat("bananas");
  const proxy = await startProxy(limited.url);
  proxy.faults.fail503 = 2;
  const statuses = [];
  const client = new Laurel({
    url: proxy.url,
    token: limited.token("--player", "busy-ann"),
    flushIntervalMs: 0,
    batchSize: 50,
    onError: (e) => statuses.push(e.status),
  });
  for (let i = 0; i < 150; i++) client.report("bananas", 1);
  await drain(client);
  assert.ok(statuses.includes(503), `503 seen: ${statuses}`);
  assert.ok(statuses.includes(429), `429 seen: ${statuses}`);
  assert.equal((await client.stats({ waitForFlush: true })).stats.bananas, 150);
  client.close();
  proxy.close();
  await limited.stop();
});

test("an unlock arrives on onUnlock within the bar, and progress on onProgress", async () => {
  const client = new Laurel({ url: laurel.url, token: laurel.token("--player", "live-ann"), flushIntervalMs: 0 });
  const unlocks = [];
  const progress = [];
  client.onProgress((p) => progress.push(p));
  let reported = 0;
  const got = new Promise((resolve) =>
    client.onUnlock((u) => {
      unlocks.push({ u, ms: performance.now() - reported });
      resolve();
    }),
  );
  // The stream is up once it is: give it its `ready`.
  await new Promise((r) => setTimeout(r, 300));
  reported = performance.now();
  client.report("coins", 1);
  await client.flush();
  await got;
  assert.equal(unlocks[0].u.achievement.id, "COINS_1");
  console.log(`unlock seen on onUnlock ${unlocks[0].ms.toFixed(1)} ms after report`);
  assert.ok(unlocks[0].ms < 1000, `${unlocks[0].ms} ms`);
  await until("progress toward COINS_2", () => progress.some((p) => p.achievement_id === "COINS_2"));
  client.close();
});

test("a cut stream resumes: unlocks made while away arrive once, in order", async () => {
  const proxy = await startProxy(laurel.url);
  const token = laurel.token("--player", "away-ann");
  const client = new Laurel({ url: proxy.url, token, flushIntervalMs: 0, maxBackoffMs: 500 });
  const seen = [];
  client.onUnlock((u) => seen.push(u.achievement.id));
  const direct = new Laurel({ url: laurel.url, token, flushIntervalMs: 0 });
  await new Promise((r) => setTimeout(r, 300));
  direct.report("coins", 1);
  await direct.flush();
  await until("the first unlock", () => seen.length === 1);
  // The network goes; two unlocks happen; it comes back.
  proxy.faults.refuse = 3;
  proxy.cutAll();
  direct.report("coins", 1);
  direct.report("coins", 1);
  await direct.achievements({ waitForFlush: true });
  await until("the missed unlocks", () => seen.length >= 3, 20_000);
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(seen, ["COINS_1", "COINS_2", "COINS_3"]);
  assert.ok(proxy.seen.refused > 0, "the stream was refused while away");
  client.close();
  direct.close();
  proxy.close();
});

test("a token refreshed mid-stream keeps the unlocks coming", async () => {
  let minted = 0;
  const client = new Laurel({
    url: laurel.url,
    token: () => {
      minted += 1;
      return laurel.token("--player", "fresh-ann", "--ttl", "2");
    },
    flushIntervalMs: 0,
  });
  const seen = [];
  client.onUnlock((u) => seen.push(u.achievement.id));
  await new Promise((r) => setTimeout(r, 3500));
  // The first token expired: the stream ended (`expired`) and came back with a new one.
  assert.ok(minted >= 2, `tokens minted: ${minted}`);
  client.report("coins", 1);
  await client.flush();
  await until("the unlock on the refreshed stream", () => seen.length === 1);
  assert.deepEqual(seen, ["COINS_1"]);
  client.close();
});

test("a refused event is named and dropped; the others in its batch are sent", async () => {
  const errors = [];
  const client = new Laurel({
    url: laurel.url,
    token: laurel.token("--player", "typo-ann"),
    flushIntervalMs: 0,
    onError: (e) => errors.push(e),
  });
  client.report("bananas", 2);
  client.report("banana", 1);
  client.report("bananas", 3);
  await drain(client);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].status, 422);
  assert.equal(errors[0].errors[0].index, 1);
  assert.match(errors[0].errors[0].reason, /did you mean `bananas`/);
  assert.equal((await client.stats({ waitForFlush: true })).stats.bananas, 5);
  // A read that fails rejects with the problem as a value.
  const stranger = new Laurel({ url: laurel.url, token: "not-a-token", flushIntervalMs: 0 });
  await assert.rejects(stranger.achievements(), (e) => e instanceof LaurelError && e.status === 401);
  client.close();
  stranger.close();
});

test("a game server reports for players and grants", async () => {
  const server = new LaurelServer({ url: laurel.url, token: laurel.token("--server"), flushIntervalMs: 0 });
  server.report("srv-ann", "coins", 2);
  server.report("srv-bob", "coins", 1);
  const ann = await server.achievements("srv-ann", { waitForFlush: true });
  assert.deepEqual(
    ann.achievements.filter((a) => a.earned).map((a) => a.id),
    ["COINS_1", "COINS_2"],
  );
  assert.equal((await server.stats("srv-bob", { waitForFlush: true })).stats.coins, 1);
  await assert.rejects(server.grant("srv-bob", "COINS_4"), (e) => e.status === 403);
  const admin = new LaurelServer({ url: laurel.url, token: laurel.admin, flushIntervalMs: 0 });
  await admin.grant("srv-bob", "COINS_4");
  const bob = await admin.achievements("srv-bob", { waitForFlush: true });
  assert.ok(bob.achievements.find((a) => a.id === "COINS_4").earned);
  const defs = await server.definitions();
  assert.ok(defs.achievements.every((a) => typeof a.earned_percent === "number"));
  server.close();
  admin.close();
});

test("read-your-writes tokens merge per partition", () => {
  assert.equal(mergeTokens(undefined, "8:1"), "8:1");
  assert.equal(mergeTokens("8:4,3:2", "3:7,5:1"), "8:4,3:7,5:1");
  assert.equal(mergeTokens("8:4", "8:2"), "8:4");
});

test("the README's quick start works as pasted", async () => {
  const { readFile, writeFile, rm } = await import("node:fs/promises");
  const { execFile } = await import("node:child_process");
  const readme = await readFile(join(here, "../README.md"), "utf8");
  const block = /<!-- sdk-test: quick start -->\s*```js\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, "the quick start block");
  assert.ok(block.trim().split("\n").length <= 10, "ten lines at most");
  await laurel.call("PUT", "/v1/admin/achievements/EAT_THOUSAND_BANANAS", {
    title: "Banana lover",
    conditions: [{ stat: "bananas", at_least: 1000 }],
  });
  const file = join(here, ".quickstart.mjs");
  await writeFile(file, block.replaceAll("http://127.0.0.1:8080", laurel.url));
  const out = await new Promise((resolve, reject) =>
    execFile(process.execPath, [file], { env: { ...process.env, PLAYER_TOKEN: laurel.token("--player", "quick-ann") } },
      (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout))),
  );
  await rm(file);
  assert.match(out, /^Banana lover: earned$/m, out);
});
