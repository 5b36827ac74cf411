import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api";
import { Bars } from "../components/Bars";
import { ErrorBox } from "../components/common";
import { sortRarity, type RarityKey } from "../rarity";
import type { Published, RarityHistory } from "../types";

/** How many players earned each achievement, sortable. */
export function RarityScreen({ api }: { api: Api }) {
  const [rows, setRows] = useState<Published[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [key, setKey] = useState<RarityKey>("earned_percent");
  const [descending, setDescending] = useState(false);
  const [history, setHistory] = useState<RarityHistory | null>(null);
  useEffect(() => void api.published().then(setRows, setError), [api]);

  async function over(id: string) {
    setError(null);
    try {
      setHistory(await api.rarityHistory(id));
    } catch (err) {
      setError(err);
    }
  }

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
              <th scope="col">Over time</th>
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
                <td>
                  <button type="button" onClick={() => over(r.id)}>
                    Earners of {r.id} over time
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {history && (
        <section aria-labelledby="history-title">
          <h2 id="history-title">Earners of {history.id} over time</h2>
          <p role="status">
            {history.earned} of {history.players} players ({history.earned_percent.toFixed(1)}%) have earned it.
          </p>
          {history.days.length === 0 ? (
            <p>Nobody has earned it yet.</p>
          ) : (
            <Bars data={history.days.map((d) => ({ label: d.day, value: d.total }))} caption={`Players who had earned ${history.id}, by the end of each day`} unit="players" />
          )}
        </section>
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
