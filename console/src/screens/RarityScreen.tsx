import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api";
import { ErrorBox } from "../components/common";
import { sortRarity, type RarityKey } from "../rarity";
import type { Published } from "../types";

/** How many players earned each achievement, sortable. */
export function RarityScreen({ api }: { api: Api }) {
  const [rows, setRows] = useState<Published[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [key, setKey] = useState<RarityKey>("earned_percent");
  const [descending, setDescending] = useState(false);
  useEffect(() => void api.published().then(setRows, setError), [api]);

  const header = (k: RarityKey, label: string) => (
    <th scope="col" aria-sort={key === k ? (descending ? "descending" : "ascending") : "none"}>
      <button
        type="button"
        class="sort"
        onClick={() => {
          setDescending(key === k ? !descending : false);
          setKey(k);
        }}
      >
        {label}
      </button>
    </th>
  );
  return (
    <section aria-labelledby="rarity-title">
      <h1 id="rarity-title" tabIndex={-1}>
        Rarity
      </h1>
      <ErrorBox error={error} />
      {rows === null ? (
        <p>Loading…</p>
      ) : (
        <table class="list">
          <caption>Share of players who earned each published achievement (a periodic one's: this period's)</caption>
          <thead>
            <tr>
              {header("id", "Id")}
              {header("title", "Title")}
              {header("earned_percent", "Earned by")}
              {header("points", "Points")}
            </tr>
          </thead>
          <tbody>
            {sortRarity(rows, key, descending).map((r) => (
              <tr key={r.id}>
                <td>{r.id}</td>
                <td>{r.title}</td>
                <td>
                  <span class="bar" aria-hidden="true">
                    <Bar percent={r.earned_percent} />
                  </span>
                  {r.earned_percent.toFixed(1)}%{r.period ? ` (${r.period})` : ""}
                </td>
                <td>{r.points}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Bar({ percent }: { percent: number }) {
  return (
    <svg width="100" height="10" viewBox="0 0 100 10" role="presentation">
      <rect width="100" height="10" class="bar-bg" />
      <rect width={Math.max(0, Math.min(100, percent))} height="10" class="bar-fg" />
    </svg>
  );
}
