import { useEffect, useMemo, useState } from "preact/hooks";
import { Api } from "./api";
import { forgetToken, readToken, secondsLeft, shouldWarn, storedToken, storeToken } from "./session";
import { hrefOf, parseRoute, type Route } from "./routes";
import type { AdminSession } from "./types";
import { SignIn } from "./screens/SignIn";
import { AchievementList } from "./screens/AchievementList";
import { AchievementEditor } from "./screens/AchievementEditor";
import { StatsScreen } from "./screens/StatsScreen";
import { RarityScreen } from "./screens/RarityScreen";
import { PlayerScreen } from "./screens/PlayerScreen";
import { LiveScreen } from "./screens/LiveScreen";
import { ReplayScreen } from "./screens/ReplayScreen";
import { DefinitionsScreen } from "./screens/DefinitionsScreen";
import { AuditScreen } from "./screens/AuditScreen";

const NAV: [Route, string][] = [
  [{ screen: "achievements" }, "Achievements"],
  [{ screen: "stats" }, "Stats"],
  [{ screen: "rarity" }, "Rarity"],
  [{ screen: "players", id: null }, "Players"],
  [{ screen: "live" }, "Live"],
  [{ screen: "replay" }, "Replay"],
  [{ screen: "definitions" }, "Definitions as code"],
  [{ screen: "audit" }, "Audit log"],
];

/** The console: sign-in until a token is accepted, then the screens. */
export function App() {
  const [token, setToken] = useState<string | null>(() => storedToken());
  const [session, setSession] = useState<AdminSession | null>(null);
  const [route, setRoute] = useState<Route>(() => parseRoute(location.hash));
  const [now, setNow] = useState(Date.now());
  const api = useMemo(() => (token ? new Api(token) : null), [token]);

  useEffect(() => {
    const onHash = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", onHash);
    const tick = setInterval(() => setNow(Date.now()), 15_000);
    return () => {
      removeEventListener("hashchange", onHash);
      clearInterval(tick);
    };
  }, []);

  useEffect(() => {
    if (!api) return;
    api.session().then(setSession, () => signOut());
  }, [api]);

  useEffect(() => {
    const title = NAV.find(([r]) => r.screen === route.screen)?.[1] ?? "Achievement";
    document.title = `${title} · Laurel console`;
    document.querySelector<HTMLElement>("main h1")?.focus();
  }, [route.screen]);

  function signIn(newToken: string, who: AdminSession) {
    storeToken(newToken);
    setToken(newToken);
    setSession(who);
  }

  function signOut() {
    forgetToken();
    setToken(null);
    setSession(null);
  }

  if (!api || !session) return <SignIn onSignedIn={signIn} />;

  const info = readToken(token!) ?? { subject: session.subject, expiresAt: session.expires_at, scopes: session.scopes };
  const left = secondsLeft(info, now);
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span class="brand">Laurel</span>
        <nav aria-label="Screens">
          <ul>
            {NAV.map(([r, label]) => (
              <li key={label}>
                <a href={hrefOf(r)} aria-current={sameScreen(route, r) ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span>
            Signed in as <strong>{session.subject}</strong>
            {Number.isFinite(left) && <span> · expires in {formatLeft(left)}</span>}
          </span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      {shouldWarn(info, now) && (
        <div class="banner" role="alert">
          <p>Your token {left > 0 ? `expires in ${formatLeft(left)}` : "has expired"}: paste a new one to stay signed in.</p>
          <SignIn onSignedIn={signIn} compact />
        </div>
      )}
      <main id="main">
        <Screen route={route} api={api} />
      </main>
    </div>
  );
}

function Screen({ route, api }: { route: Route; api: Api }) {
  switch (route.screen) {
    case "achievements":
      return <AchievementList api={api} />;
    case "achievement":
      return <AchievementEditor api={api} id={route.id} key={route.id ?? "new"} />;
    case "stats":
      return <StatsScreen api={api} />;
    case "rarity":
      return <RarityScreen api={api} />;
    case "players":
      return <PlayerScreen api={api} id={route.id} key={route.id ?? ""} />;
    case "live":
      return <LiveScreen api={api} />;
    case "replay":
      return <ReplayScreen api={api} />;
    case "definitions":
      return <DefinitionsScreen api={api} />;
    case "audit":
      return <AuditScreen api={api} />;
  }
}

function sameScreen(a: Route, b: Route): boolean {
  return a.screen === b.screen || (a.screen === "achievement" && b.screen === "achievements");
}

/** Seconds as "2 h 5 min", "4 min", "30 s". */
export function formatLeft(secs: number): string {
  if (secs < 60) return `${Math.max(0, Math.floor(secs))} s`;
  const min = Math.floor(secs / 60);
  return min < 60 ? `${min} min` : `${Math.floor(min / 60)} h ${min % 60} min`;
}
