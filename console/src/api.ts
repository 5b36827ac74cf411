// The console's one way to the server: the public admin API, with the signed-in token in
// the Authorization header of every call (which is also what makes every write CSRF-safe:
// a cookie alone never authorizes anything here).

import { ApiError, type Problem } from "./problem";
import { parseSse, type SseEvent } from "./sse";
import type {
  AchievementDefinition,
  AchievementSpec,
  AdminSession,
  DefinitionsFile,
  PlayerAchievements,
  PlayerStats,
  Published,
  Refusal,
  ReplayLine,
  SeasonDefinition,
  StatDefinition,
  StatSpec,
  StatSummary,
  RarityHistory,
  Timeline,
  AuditEntry,
} from "./types";

type Method = "GET" | "PUT" | "POST" | "DELETE";

/** A client of Laurel's HTTP API for one signed-in admin. */
export class Api {
  constructor(
    private readonly token: string,
    private readonly base = "",
  ) {}

  /** Calls a route and reads its JSON answer; a problem becomes an `ApiError`. */
  async call<T>(method: Method, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ body: T; response: Response }> {
    const response = await this.send(method, path, body, headers);
    const text = await response.text();
    return { body: (text ? JSON.parse(text) : null) as T, response };
  }

  private async send(method: Method, path: string, body?: unknown, headers: Record<string, string> = {}, raw?: BodyInit): Promise<Response> {
    const init: RequestInit = {
      method,
      headers: { authorization: `Bearer ${this.token}`, accept: "application/json", ...headers },
      credentials: "omit",
    };
    if (raw !== undefined) init.body = raw;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] = "application/json";
    }
    const response = await fetch(this.base + path, init);
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    return response;
  }

  /** Who the token is, as the server sees it. */
  async session(): Promise<AdminSession> {
    return (await this.call<AdminSession>("GET", "/v1/admin/session")).body;
  }

  async achievements(): Promise<AchievementDefinition[]> {
    return (await this.call<{ achievements: AchievementDefinition[] }>("GET", "/v1/admin/achievements")).body.achievements;
  }

  async achievement(id: string): Promise<AchievementDefinition> {
    return (await this.call<AchievementDefinition>("GET", `/v1/admin/achievements/${enc(id)}`)).body;
  }

  /** Saves an achievement; with `version`, only if nobody saved another since (else 412). */
  async putAchievement(id: string, spec: AchievementSpec, version?: number): Promise<AchievementDefinition> {
    const headers: Record<string, string> = version === undefined ? {} : { "if-match": `"${version}"` };
    return (await this.call<AchievementDefinition>("PUT", `/v1/admin/achievements/${enc(id)}`, spec, headers)).body;
  }

  async archiveAchievement(id: string): Promise<void> {
    await this.call("DELETE", `/v1/admin/achievements/${enc(id)}`);
  }

  /** Uploads an icon onto `version` of the achievement; the server redraws it, names it by digest and sets it. */
  async uploadIcon(id: string, slot: "locked" | "unlocked", file: Blob, version: number): Promise<AchievementDefinition> {
    const headers = { "content-type": file.type || "application/octet-stream", "if-match": `"${version}"` };
    const response = await this.send("PUT", `/v1/admin/achievements/${enc(id)}/icons/${slot}`, undefined, headers, file);
    return ((await response.json()) as { achievement: AchievementDefinition }).achievement;
  }

  async stats(): Promise<StatDefinition[]> {
    return (await this.call<{ stats: StatDefinition[] }>("GET", "/v1/admin/stats")).body.stats;
  }

  async putStat(name: string, spec: StatSpec): Promise<StatDefinition> {
    return (await this.call<StatDefinition>("PUT", `/v1/admin/stats/${enc(name)}`, spec)).body;
  }

  /** How a stat's values spread over the players, and why its events were refused. */
  async statSummary(name: string, buckets = 20): Promise<StatSummary> {
    return (await this.call<StatSummary>("GET", `/v1/admin/stats/${enc(name)}/summary?buckets=${buckets}`)).body;
  }

  /** An achievement's earners, day by day. */
  async rarityHistory(id: string): Promise<RarityHistory> {
    return (await this.call<RarityHistory>("GET", `/v1/admin/achievements/${enc(id)}/rarity`)).body;
  }

  async seasons(): Promise<SeasonDefinition[]> {
    return (await this.call<{ seasons: SeasonDefinition[] }>("GET", "/v1/admin/seasons")).body.seasons;
  }

  /** Published definitions with their rarity. */
  async published(): Promise<Published[]> {
    return (await this.call<{ achievements: Published[] }>("GET", "/v1/achievements")).body.achievements;
  }

  async playerAchievements(player: string): Promise<PlayerAchievements> {
    return (await this.call<PlayerAchievements>("GET", `/v1/players/${enc(player)}/achievements`)).body;
  }

  async playerStats(player: string): Promise<PlayerStats> {
    return (await this.call<PlayerStats>("GET", `/v1/players/${enc(player)}/stats`)).body;
  }

  async refusals(player: string): Promise<Refusal[]> {
    return (await this.call<{ refusals: Refusal[] }>("GET", `/v1/players/${enc(player)}/refusals`)).body.refusals;
  }

  /** What happened to a player lately, newest first. */
  async timeline(player: string, limit = 100): Promise<Timeline> {
    return (await this.call<Timeline>("GET", `/v1/admin/players/${enc(player)}/timeline?limit=${limit}`)).body;
  }

  /** Resets a test player (only ids matching the server's `--test-players`); the read-your-writes token. */
  async resetPlayer(player: string): Promise<string> {
    return (await this.call<{ token: string }>("POST", `/v1/admin/players/${enc(player)}/reset`)).body.token;
  }

  /** Every admin action, newest first. */
  async audit(limit = 200): Promise<AuditEntry[]> {
    return (await this.call<{ entries: AuditEntry[] }>("GET", `/v1/admin/audit?limit=${limit}`)).body.entries;
  }

  async grant(player: string, achievementId: string): Promise<void> {
    await this.call("POST", `/v1/admin/players/${enc(player)}/grants`, { achievement_id: achievementId });
  }


  /** Checks (with `dryRun`) or applies a definitions file whole. */
  async applyDefinitions(definitions: DefinitionsFile, dryRun: boolean, prune = false): Promise<{ applied: boolean; changes: { kind: string; id: string; action: string; version?: number }[] }> {
    return (await this.call<{ applied: boolean; changes: { kind: string; id: string; action: string; version?: number }[] }>("PUT", "/v1/admin/definitions", { definitions, dry_run: dryRun, prune })).body;
  }

  /** Runs a replay, calling `onLine` for each line of its answer as it comes. */
  async replay(request: { definitions?: DefinitionsFile; apply?: boolean; samples?: number }, onLine: (line: ReplayLine) => void, signal?: AbortSignal): Promise<void> {
    const response = await this.send("POST", "/v1/admin/replay", request);
    await readLines(response, signal, (line) => onLine(JSON.parse(line) as ReplayLine));
  }

  /** Follows every player's unlocks live (Server-Sent Events read with the token in a header). */
  async live(onEvent: (event: SseEvent) => void, signal: AbortSignal): Promise<void> {
    const response = await this.send("GET", "/v1/admin/notifications", undefined, { accept: "text/event-stream" });
    const events = parseSse();
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    signal.addEventListener("abort", () => void reader.cancel());
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      for (const event of events.push(value)) onEvent(event);
    }
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

async function problemOf(response: Response): Promise<Problem> {
  const text = await response.text();
  try {
    const parsed = JSON.parse(text) as Problem;
    if (typeof parsed === "object" && parsed && "status" in parsed) return parsed;
  } catch {
    // not a problem document
  }
  return { title: response.statusText || "request failed", status: response.status, detail: text.slice(0, 200) };
}

async function readLines(response: Response, signal: AbortSignal | undefined, onLine: (line: string) => void): Promise<void> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  signal?.addEventListener("abort", () => void reader.cancel());
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) onLine(line);
    }
  }
  if (buffer.trim()) onLine(buffer.trim());
}
