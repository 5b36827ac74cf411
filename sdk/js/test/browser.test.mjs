// examples/browser-game in Debian's Chromium (playwright-core, the system browser): the page
// is served from an origin of its own, the API from `laurel serve --cors-origins` that
// origin; clicks are reported through the SDK and the unlock shows live. The screenshot
// goes to target/sdk-screenshots/browser-game.png.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFile, mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join, dirname, extname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startLaurel, freePort } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "../../..");
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };

/** A static server of the repository's files (only examples/ and sdk/js/dist/). */
async function servePages() {
  const port = await freePort();
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^\/+/, "");
    if (!path.startsWith("examples/") && !path.startsWith("sdk/js/dist/")) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(join(repo, path));
      res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return { origin: `http://127.0.0.1:${port}`, close: () => server.close() };
}

let cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test("the example browser game reports clicks and shows the unlock live, from another origin", async () => {
  assert.ok(existsSync(browserPath), `no Chromium at ${browserPath}: apt-get install chromium (.ci/run does), or set CHROMIUM`);
  const pages = await servePages();
  cleanup.push(() => pages.close());
  const laurel = await startLaurel(["--cors-origins", pages.origin]);
  cleanup.push(() => laurel.stop());
  await laurel.defineStat("asteroids_destroyed");
  const r = await laurel.call("PUT", "/v1/admin/achievements/ROCK_BREAKER", {
    title: "Rock breaker",
    locked_description: "Destroy 3 asteroids",
    unlocked_description: "You destroyed 3 asteroids",
    conditions: [{ stat: "asteroids_destroyed", at_least: 3 }],
  });
  assert.equal(r.status, 201);

  const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
  cleanup.push(() => browser.close());
  const page = await browser.newPage();
  const failures = [];
  page.on("pageerror", (e) => failures.push(e.message));
  page.on("console", (m) => m.type() === "error" && failures.push(m.text()));
  const token = laurel.token("--player", "web-ann");
  await page.goto(`${pages.origin}/examples/browser-game/index.html?laurel=${encodeURIComponent(laurel.url)}&token=${token}`);
  await page.getByText("Connected").waitFor({ timeout: 10_000 });
  for (let i = 0; i < 3; i++) await page.getByRole("button", { name: "Destroy an asteroid" }).click();
  await page.getByText("Unlocked: Rock breaker").waitFor({ timeout: 10_000 });
  await page.locator("li.earned", { hasText: "Rock breaker" }).waitFor({ timeout: 10_000 });
  const shots = join(repo, "target/sdk-screenshots");
  await mkdir(shots, { recursive: true });
  await page.screenshot({ path: join(shots, "browser-game.png") });
  assert.deepEqual(failures, []);
  assert.equal((await laurel.statsOf("web-ann")).asteroids_destroyed, 3, "each click once");
});
