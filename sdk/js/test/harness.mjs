// What the SDK's tests run against: a real `laurel serve` (the binary named by LAUREL_BIN,
// else the workspace's debug build) on a free port with its own data dir, and a TCP proxy
// in front of it that cuts connections or answers 503 when told (the network's faults).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";

const here = dirname(fileURLToPath(import.meta.url));
export const laurelBin = process.env.LAUREL_BIN ?? join(here, "../../../target/debug/laurel");

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function until(what, check, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A `laurel serve` of its own; `stop()` ends it and removes its data. */
export async function startLaurel(args = []) {
  const dir = mkdtempSync(join(tmpdir(), "laurel-sdk-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(laurelBin, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", join(dir, "data"), ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (d) => (log += d));
  await until(`laurel ready on ${url}\n${log}`, async () => {
    try {
      return (await fetch(`${url}/readyz`)).ok;
    } catch {
      return false;
    }
  });
  const token = (...who) =>
    execFileSync(laurelBin, ["token", "--data-dir", join(dir, "data"), ...who], { encoding: "utf8" }).trim();
  const admin = token("--admin");
  const call = async (method, path, body, bearer = admin) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : null };
  };
  return {
    url,
    dir,
    token,
    admin,
    call,
    /** A summed int stat players may report. */
    async defineStat(name) {
      const r = await call("PUT", `/v1/admin/stats/${name}`, { aggregation: "sum", kind: "int", client_writable: true });
      if (r.status !== 201) throw new Error(JSON.stringify(r.json));
    },
    async defineAchievement(id, stat, atLeast) {
      const r = await call("PUT", `/v1/admin/achievements/${id}`, {
        title: id,
        conditions: [{ stat, at_least: atLeast }],
      });
      if (r.status !== 201) throw new Error(JSON.stringify(r.json));
    },
    /** A player's stats once the views reflect everything on the log (`/readyz` lag 0). */
    async statsOf(player) {
      await until("the views to catch up", async () => (await call("GET", "/readyz")).json?.lag === 0);
      const r = await call("GET", `/v1/players/${player}/stats`);
      return r.json.stats;
    },
    async stop() {
      child.kill("SIGKILL");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP proxy to `target` (host:port). Faults, each for the next N connections:
 * `cutAfterRequest` (the request reaches the server, the answer never comes back: the
 * connection is cut as the answer starts), `hold` (the answer is held back until the
 * proxy closes), `refuse` (closed at once), `fail503` (answered 503 with `Retry-After: 1`
 * by the proxy itself). `cutAll()` cuts every open connection.
 */
export async function startProxy(targetUrl) {
  const target = new URL(targetUrl);
  const faults = { cutAfterRequest: 0, hold: 0, refuse: 0, fail503: 0 };
  const seen = { connections: 0, cut: 0, held: 0, answered503: 0, refused: 0 };
  const open = new Set();
  const server = net.createServer((client) => {
    seen.connections += 1;
    open.add(client);
    client.on("close", () => open.delete(client));
    client.on("error", () => {});
    if (faults.refuse > 0) {
      faults.refuse -= 1;
      seen.refused += 1;
      client.destroy();
      return;
    }
    if (faults.fail503 > 0) {
      faults.fail503 -= 1;
      seen.answered503 += 1;
      client.once("data", () => {
        const body = '{"type":"about:blank","title":"Service Unavailable","status":503}';
        client.end(
          `HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/problem+json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
        );
      });
      return;
    }
    const mode = faults.cutAfterRequest > 0 ? "cut" : faults.hold > 0 ? "hold" : "pass";
    if (mode === "cut") faults.cutAfterRequest -= 1;
    if (mode === "hold") faults.hold -= 1;
    const upstream = net.connect(Number(target.port), target.hostname);
    open.add(upstream);
    upstream.on("close", () => open.delete(upstream));
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => {
      if (mode === "cut") {
        seen.cut += 1;
        client.destroy();
        upstream.destroy();
      } else if (mode === "hold") {
        seen.held += 1;
      } else {
        client.write(d);
      }
    });
    upstream.on("end", () => {
      if (mode === "pass") client.end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    faults,
    seen,
    cutAll() {
      for (const socket of open) socket.destroy();
    },
    close() {
      for (const socket of open) socket.destroy();
      server.close();
    },
  };
}
