import { describe, expect, it } from "vitest";
import { fieldErrors, normalizeField } from "../src/problem";
import { readToken, secondsLeft, shouldWarn } from "../src/session";
import { parseSse } from "../src/sse";
import { diffDefinitions, diffFields, exportFile } from "../src/diff";
import { reorder, visibleRows } from "../src/achievements";
import { draftOf, emptyDraft, iconUrl, playerTexts, specOf, DraftError } from "../src/editor";
import { parseRoute, hrefOf } from "../src/routes";
import { countOf, perSecond } from "../src/rate";
import { sortRarity } from "../src/rarity";
import type { AchievementDefinition } from "../src/types";

function jwt(claims: object): string {
  const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${b64({ alg: "HS256" })}.${b64(claims)}.sig`;
}

function def(id: string, order: number, extra: Partial<AchievementDefinition> = {}): AchievementDefinition {
  return { id, title: id.toUpperCase(), order, version: 1, archived: false, ...extra };
}

describe("problems", () => {
  it("maps each refused field to its reasons", () => {
    const errors = fieldErrors({
      title: "invalid",
      status: 422,
      errors: [
        { field: "title", reason: "must not be empty" },
        { field: "conditions.0.stat", reason: "no such stat" },
        { field: "title", reason: "too long" },
        { reason: "whole body" },
      ],
    });
    expect(errors).toEqual({ title: "must not be empty; too long", "conditions[0].stat": "no such stat", "": "whole body" });
  });

  it("finds the field a body that does not parse names in its detail", () => {
    expect(fieldErrors({ title: "bad", status: 400, detail: "invalid JSON body: `points`: invalid type" })).toEqual({ points: "invalid JSON body: `points`: invalid type" });
  });

  it("normalizes dotted indexes", () => {
    expect(normalizeField("a.3.b")).toBe("a[3].b");
    expect(normalizeField("a[3].b")).toBe("a[3].b");
  });
});

describe("session", () => {
  it("reads subject, expiry and scopes of every claim form", () => {
    const info = readToken(jwt({ sub: "ana", exp: 2000, scope: "laurel:admin x", scp: ["y"], "cognito:groups": ["z"] }))!;
    expect(info.subject).toBe("ana");
    expect(info.expiresAt).toBe(2000);
    expect(info.scopes.sort()).toEqual(["laurel:admin", "x", "y", "z"]);
  });

  it("refuses what is not a JWT", () => {
    expect(readToken("not a token")).toBeNull();
    expect(readToken("a.!!!.c")).toBeNull();
  });

  it("warns five minutes before expiry, not before", () => {
    const info = { subject: "a", expiresAt: 1000, scopes: [] };
    expect(secondsLeft(info, 400_000)).toBe(600);
    expect(shouldWarn(info, 400_000)).toBe(false);
    expect(shouldWarn(info, 700_000)).toBe(true);
    expect(shouldWarn({ ...info, expiresAt: null }, 1e15)).toBe(false);
  });
});

describe("server-sent events", () => {
  it("keeps partial lines between chunks and skips comments", () => {
    const parser = parseSse();
    expect(parser.push(": keep-alive\n\nevent: unl")).toEqual([]);
    expect(parser.push('ocked\nid: u1\ndata: {"a":\ndata: 1}\n\n')).toEqual([{ event: "unlocked", id: "u1", data: '{"a":\n1}' }]);
    expect(parser.push("data: x\r\n\r\n")).toEqual([{ event: "message", id: "u1", data: "x" }]);
  });
});

describe("diffs", () => {
  it("lists changed, added and removed fields by path", () => {
    expect(diffFields({ title: "a", points: 1, localizations: { fr: { title: "x" } } }, { title: "b", points: 1, localizations: { fr: { title: "y" } }, tags: ["t"] })).toEqual([
      { path: "localizations.fr.title", before: "x", after: "y" },
      { path: "tags", before: undefined, after: ["t"] },
      { path: "title", before: "a", after: "b" },
    ]);
  });

  it("takes absent, empty text, empty lists and empty maps as alike", () => {
    expect(diffFields({ title: "a", locked_description: "", conditions: [] }, { title: "a", metadata: {}, requires: null })).toEqual([]);
    expect(diffFields({ tags: [] }, { tags: ["x"] })).toEqual([{ path: "tags", before: [], after: ["x"] }]);
  });

  it("compares a file with the live definitions", () => {
    const live = exportFile([{ name: "kills", version: 3, aggregation: "sum", kind: "int" } as never], [def("a", 0), def("gone", 0, { archived: true }), def("b", 1)], []);
    expect(Object.keys(live.achievements!)).toEqual(["a", "b"]);
    const file = { stats: { kills: { aggregation: "sum", kind: "int" } }, achievements: { a: { ...live.achievements!.a, title: "New" }, c: { title: "C" } } } as never;
    const diff = diffDefinitions(live, file);
    expect(diff.map((d) => [d.kind, d.id, d.action])).toEqual([
      ["achievement", "a", "changed"],
      ["achievement", "b", "absent"],
      ["achievement", "c", "new"],
    ]);
    expect(diff[0].fields).toEqual([{ path: "title", before: "A", after: "New" }]);
  });
});

describe("achievements list", () => {
  const rows = [def("b", 10, { visibility: "secret", tags: ["combat"] }), def("a", 10), def("c", 20, { archived: true }), def("d", 30, { available_until: "2027-01-01T00:00:00Z" })];

  it("sorts by order then id, and filters", () => {
    expect(visibleRows(rows, "", "all").map((r) => r.id)).toEqual(["a", "b", "d"]);
    expect(visibleRows(rows, "", "archived").map((r) => r.id)).toEqual(["c"]);
    expect(visibleRows(rows, "", "secret").map((r) => r.id)).toEqual(["b"]);
    expect(visibleRows(rows, "", "time-limited").map((r) => r.id)).toEqual(["d"]);
    expect(visibleRows(rows, "COMBAT", "all").map((r) => r.id)).toEqual(["b"]);
  });

  it("moves one row into a gap, or numbers the list again", () => {
    expect(reorder([def("a", 0), def("b", 10), def("c", 20)], "c", "b")).toEqual([{ id: "c", order: 5 }]);
    expect(reorder([def("a", 0), def("b", 1), def("c", 2)], "c", "b")).toEqual([
      { id: "a", order: 10 },
      { id: "c", order: 20 },
      { id: "b", order: 30 },
    ]);
    expect(reorder([def("a", 0), def("b", 10)], "b", "a")).toEqual([{ id: "b", order: -10 }]);
    expect(reorder([def("a", 0)], "a", "a")).toEqual([]);
  });
});

describe("editor", () => {
  it("round-trips a stored achievement through the form", () => {
    const stored = def("win", 3, {
      locked_description: "Win once",
      points: 10,
      visibility: "secret",
      conditions: [{ stat: "wins", at_least: 1 }, { stat: "deaths", at_most: 0 }],
      requires: ["first"],
      localizations: { fr: { title: "Gagner" } },
      metadata: { rarity: "gold" },
      tags: ["combat"],
      repeat: { max: null, cooldown_secs: 60 },
      rewards: [{ currency: "gold", amount: 5 }],
      claim: true,
    });
    const { id: _i, version: _v, archived: _a, ...spec } = stored;
    expect(specOf(draftOf(stored))).toEqual(spec);
  });

  it("sends what is not a number as typed, for the server to name", () => {
    const draft = { ...emptyDraft(), id: "x", title: "X", points: "ten" };
    expect(specOf(draft).points).toBe("ten");
  });

  it("refuses JSON that does not parse, naming the field", () => {
    expect(() => specOf({ ...emptyDraft(), metadata: "{oops" })).toThrow(DraftError);
    try {
      specOf({ ...emptyDraft(), rewards: "[" });
    } catch (e) {
      expect((e as DraftError).field).toBe("rewards");
    }
  });

  it("shows a player the localized texts with fallbacks, hiding a secret's description", () => {
    const draft = { ...emptyDraft(), title: "Win", locked_description: "Win a match", unlocked_description: "Won", localizations: { fr: { title: "Gagner" } } };
    expect(playerTexts(draft, "fr")).toEqual({ title: "Gagner", locked: "Win a match", unlocked: "Won" });
    expect(playerTexts({ ...draft, visibility: "secret" }, null).locked).toBe("");
  });

  it("builds an uploaded icon's URL from its digest", () => {
    expect(iconUrl("a".repeat(64))).toBe(`/v1/icons/${"a".repeat(64)}`);
    expect(iconUrl("https://cdn.example/x.png")).toBe("https://cdn.example/x.png");
    expect(iconUrl("")).toBeNull();
  });
});

describe("routes", () => {
  it("round-trips every screen through the hash", () => {
    for (const hash of ["#/achievements", "#/achievements/new", "#/achievements/a%2Fb", "#/stats", "#/rarity", "#/players", "#/players/p%201", "#/live", "#/replay", "#/definitions", "#/audit"]) {
      expect(hrefOf(parseRoute(hash))).toBe(hash);
    }
    expect(parseRoute("#/nowhere")).toEqual({ screen: "achievements" });
  });
});

describe("live rate and rarity", () => {
  it("counts unlocks per second of the last minute", () => {
    const buckets = perSecond([59_000, 59_500, 60_100, 1_000], 60_500, 3);
    expect(buckets).toEqual([0, 2, 1]);
  });

  it("says one unlock and many unlocks", () => {
    expect([0, 1, 2].map((n) => countOf(n, "unlock"))).toEqual(["0 unlocks", "1 unlock", "2 unlocks"]);
    expect(countOf(1, "definition differs", "definitions differ")).toBe("1 definition differs");
  });

  it("sorts rarity by a column, ties by id", () => {
    const rows = [
      { id: "b", title: "B", points: 1, earned_percent: 5 },
      { id: "a", title: "A", points: 2, earned_percent: 5 },
      { id: "c", title: "C", points: 0, earned_percent: 50 },
    ];
    expect(sortRarity(rows, "earned_percent", false).map((r) => r.id)).toEqual(["a", "b", "c"]);
    expect(sortRarity(rows, "earned_percent", true).map((r) => r.id)).toEqual(["c", "a", "b"]);
    expect(sortRarity(rows, "points", true).map((r) => r.id)).toEqual(["a", "b", "c"]);
  });
});

import { whyNot } from "../src/why";

describe("why not earned", () => {
  const now = Date.parse("2026-12-04T00:00:00Z");
  it("names each condition still short, unmet requirements, the window and the refusals that ate progress", () => {
    const d = def("a", 0, { requires: ["first"], conditions: [{ stat: "wins", at_least: 5 }, { stat: "deaths", at_most: 0 }], available_until: "2026-12-01T00:00:00Z" });
    const refusals = [{ event_id: "e", stat: "wins", value: 50, reason: "the change is larger than max_delta", code: { code: "delta_too_large" }, at: "" }];
    expect(whyNot(d, { wins: 2, deaths: 1 }, new Set(), refusals, now)).toEqual([
      "it closed at 2026-12-01T00:00:00Z",
      "it requires first, not earned yet",
      "wins is 2, short of 5",
      "an event of wins (50) was refused: the change is larger than max_delta",
      "deaths is 1, above 0",
    ]);
  });

  it("says when only a grant can earn it, and nothing when all holds", () => {
    expect(whyNot(def("g", 0), {}, new Set(), [], now)).toEqual(["it has no conditions: only a grant earns it"]);
    expect(whyNot(def("w", 0, { conditions: [{ stat: "wins", at_least: 1 }] }), { wins: 1 }, new Set(), [], now)).toEqual([]);
  });
});
