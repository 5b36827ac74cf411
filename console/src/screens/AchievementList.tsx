import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api";
import { reorder, visibleRows, type Filter } from "../achievements";
import { ErrorBox } from "../components/common";
import { specOfDefinition } from "../definitions";
import type { AchievementDefinition } from "../types";

const FILTERS: [Filter, string][] = [
  ["all", "All live"],
  ["hidden", "Hidden"],
  ["secret", "Secret"],
  ["time-limited", "Time-limited"],
  ["archived", "Archived"],
];

/** Every achievement: search, filters, and the order players see, changed by drag or keys. */
export function AchievementList({ api }: { api: Api }) {
  const [rows, setRows] = useState<AchievementDefinition[] | null>(null);
  const [search, setSearch] = useState("");
  const [filter, setFilter] = useState<Filter>("all");
  const [error, setError] = useState<unknown>(null);
  const [dragging, setDragging] = useState<string | null>(null);
  const [status, setStatus] = useState("");

  const load = () => api.achievements().then(setRows, setError);
  useEffect(() => void load(), [api]);

  async function move(moved: string, target: string) {
    if (!rows) return;
    const changes = reorder(rows, moved, target);
    setError(null);
    try {
      for (const change of changes) {
        const def = rows.find((r) => r.id === change.id)!;
        await api.putAchievement(def.id, { ...specOfDefinition(def), order: change.order }, def.version);
      }
      setStatus(changes.length ? `Moved ${moved} before ${target}.` : "");
    } catch (e) {
      setError(e);
    }
    await load();
  }

  const shown = rows ? visibleRows(rows, search, filter) : [];
  return (
    <section aria-labelledby="achievements-title">
      <div class="title-row">
        <h1 id="achievements-title" tabIndex={-1}>
          Achievements
        </h1>
        <a class="button" href="#/achievements/new">
          New achievement
        </a>
      </div>
      <div class="toolbar">
        <label for="search">Search</label>
        <input id="search" type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} placeholder="id, title or tag" />
        <label for="filter">Show</label>
        <select id="filter" value={filter} onChange={(e) => setFilter(e.currentTarget.value as Filter)}>
          {FILTERS.map(([value, label]) => (
            <option value={value} key={value}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <ErrorBox error={error} />
      <p class="sr-status" role="status">
        {status}
      </p>
      {rows === null ? (
        <p>Loading…</p>
      ) : (
        <table class="list">
          <caption>
            {shown.length} of {rows.length} achievements, in the order players see them (drag a row, or use its move buttons)
          </caption>
          <thead>
            <tr>
              <th scope="col">Order</th>
              <th scope="col">Id</th>
              <th scope="col">Title</th>
              <th scope="col">Visibility</th>
              <th scope="col">Points</th>
              <th scope="col">Tags</th>
              <th scope="col">Move</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((a, i) => (
              <tr
                key={a.id}
                draggable={!a.archived}
                class={dragging === a.id ? "dragging" : undefined}
                onDragStart={(e) => {
                  setDragging(a.id);
                  e.dataTransfer?.setData("text/plain", a.id);
                }}
                onDragEnd={() => setDragging(null)}
                onDragOver={(e) => e.preventDefault()}
                onDrop={(e) => {
                  e.preventDefault();
                  const moved = e.dataTransfer?.getData("text/plain") || dragging;
                  setDragging(null);
                  if (moved && moved !== a.id) void move(moved, a.id);
                }}
              >
                <td>{a.order ?? 0}</td>
                <td>
                  <a href={`#/achievements/${encodeURIComponent(a.id)}`}>{a.id}</a>
                </td>
                <td>{a.title}</td>
                <td>{a.archived ? "archived" : a.visibility ?? "visible"}</td>
                <td>{a.points ?? 0}</td>
                <td>{(a.tags ?? []).join(", ")}</td>
                <td class="move">
                  <button type="button" aria-label={`Move ${a.id} up`} disabled={i === 0 || a.archived} onClick={() => move(a.id, shown[i - 1].id)}>
                    ↑
                  </button>
                  <button type="button" aria-label={`Move ${a.id} down`} disabled={i >= shown.length - 1 || a.archived} onClick={() => i + 2 < shown.length ? move(a.id, shown[i + 2].id) : move(shown[i + 1].id, a.id)}>
                    ↓
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
