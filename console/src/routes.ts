// The console's screens, addressed by the URL's hash (`#/players/p-1`) so that the server
// serves one page and every screen has a link of its own.

export type Route =
  | { screen: "achievements" }
  | { screen: "achievement"; id: string | null }
  | { screen: "stats" }
  | { screen: "rarity" }
  | { screen: "players"; id: string | null }
  | { screen: "live" }
  | { screen: "replay" }
  | { screen: "definitions" }
  | { screen: "audit" };

/** The route a hash names; unknown hashes go to the achievements list. */
export function parseRoute(hash: string): Route {
  const [screen = "", ...rest] = hash.replace(/^#\/?/, "").split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
  switch (screen) {
    case "achievements":
      return arg === null ? { screen: "achievements" } : { screen: "achievement", id: arg === "new" ? null : arg };
    case "stats":
    case "rarity":
    case "live":
    case "replay":
    case "definitions":
    case "audit":
      return { screen };
    case "players":
      return { screen: "players", id: arg };
    default:
      return { screen: "achievements" };
  }
}

/** The hash of a route. */
export function hrefOf(route: Route): string {
  switch (route.screen) {
    case "achievement":
      return `#/achievements/${route.id === null ? "new" : encodeURIComponent(route.id)}`;
    case "players":
      return route.id === null ? "#/players" : `#/players/${encodeURIComponent(route.id)}`;
    default:
      return `#/${route.screen}`;
  }
}
