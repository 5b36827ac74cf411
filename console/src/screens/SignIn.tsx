import { useState } from "preact/hooks";
import { Api } from "../api";
import { ErrorBox } from "../components/common";
import type { AdminSession } from "../types";

/** Paste an admin token; the server says whether it is one (and why not). */
export function SignIn({ onSignedIn, compact = false }: { onSignedIn: (token: string, who: AdminSession) => void; compact?: boolean }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const trimmed = token.trim();
      const who = await new Api(trimmed).session();
      onSignedIn(trimmed, who);
      setToken("");
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const form = (
    <form onSubmit={submit} class="signin">
      <label for={compact ? "token-again" : "token"}>{compact ? "New admin token" : "Admin token"}</label>
      <input id={compact ? "token-again" : "token"} type="password" autocomplete="off" spellcheck={false} value={token} onInput={(e) => setToken(e.currentTarget.value)} required />
      <button type="submit" disabled={busy || !token.trim()}>
        Sign in
      </button>
      <ErrorBox error={error} />
    </form>
  );
  if (compact) return form;
  return (
    <main id="main" class="signin-page">
      <h1 tabIndex={-1}>Laurel console</h1>
      <p>
        Paste an admin token: one from your identity provider with the <code>laurel:admin</code> scope, or a development one from{" "}
        <code>laurel token --admin</code>. It is kept for this tab only and forgotten when the tab closes.
      </p>
      {form}
    </main>
  );
}
