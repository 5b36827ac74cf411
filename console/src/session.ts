// The signed-in admin: a bearer token pasted once and kept for this tab only
// (sessionStorage: gone when the tab closes; never a cookie, never localStorage).

/** What the console knows of a token without checking it (the server checks it). */
export interface TokenInfo {
  subject: string;
  expiresAt: number | null;
  scopes: string[];
}

const KEY = "laurel.console.token";

/** Reads a JWT's claims; `null` when it is not a JWT. */
export function readToken(token: string): TokenInfo | null {
  const parts = token.trim().split(".");
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(parts[1].length / 4) * 4, "="));
    const claims = JSON.parse(json) as Record<string, unknown>;
    const scopes = new Set<string>();
    for (const claim of [claims.scope, claims.scp, claims["cognito:groups"]]) {
      if (typeof claim === "string") claim.split(" ").filter(Boolean).forEach((s) => scopes.add(s));
      if (Array.isArray(claim)) claim.filter((s): s is string => typeof s === "string").forEach((s) => scopes.add(s));
    }
    return {
      subject: typeof claims.sub === "string" ? claims.sub : "",
      expiresAt: typeof claims.exp === "number" ? claims.exp : null,
      scopes: [...scopes],
    };
  } catch {
    return null;
  }
}

/** Seconds until the token expires at `now` (ms), `Infinity` without `exp`. */
export function secondsLeft(info: TokenInfo, now: number): number {
  return info.expiresAt === null ? Infinity : info.expiresAt - Math.floor(now / 1000);
}

/** When the console asks for a new token: five minutes before expiry (or at half a short life). */
export const WARN_BEFORE_SECS = 300;

/** Whether to ask for a fresh token now. */
export function shouldWarn(info: TokenInfo, now: number): boolean {
  return secondsLeft(info, now) <= WARN_BEFORE_SECS;
}

/** The token kept for this tab, if any. */
export function storedToken(): string | null {
  return sessionStorage.getItem(KEY);
}

/** Keeps the token for this tab. */
export function storeToken(token: string): void {
  sessionStorage.setItem(KEY, token);
}

/** Forgets the token. */
export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
}
