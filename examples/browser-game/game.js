// A tiny browser game on Laurel's TypeScript SDK: each click reports a stat (queued in
// localStorage, so clicks made offline are sent later, each once), achievements are read
// back, and unlocks show as they happen. Build the SDK once (`npm ci --prefix sdk/js`), serve
// the repository's root over HTTP (`python3 -m http.server 3000`), and open
//   http://127.0.0.1:3000/examples/browser-game/index.html?laurel=http://127.0.0.1:8080&token=PLAYER_TOKEN
// with `laurel serve --cors-origins http://127.0.0.1:3000`. In general, open it as
//   index.html?laurel=http://127.0.0.1:8080&token=PLAYER_TOKEN
// with the page's origin in the server's --cors-origins (docs/sdks.md).
import { Laurel, LocalStorageStore } from "../../sdk/js/dist/index.js";

const params = new URLSearchParams(location.search);
const laurel = new Laurel({
  url: params.get("laurel") ?? "http://127.0.0.1:8080",
  token: params.get("token") ?? "",
  store: new LocalStorageStore("asteroid-clicker"),
  flushIntervalMs: 500,
  onError: (e) => show(`status`, `${e.title}${e.detail ? `: ${e.detail}` : ""} (retrying)`),
});

const $ = (id) => document.getElementById(id);
const show = (id, text) => ($(id).textContent = text);
let count = 0;

async function refresh() {
  const { achievements } = await laurel.achievements({ waitForFlush: true });
  show("pending", String(laurel.pending));
  $("achievements").replaceChildren(
    ...achievements.map((a) => {
      const li = document.createElement("li");
      li.textContent = `${a.title}: ${a.description}`;
      if (a.earned) li.className = "earned";
      return li;
    }),
  );
}

$("asteroid").addEventListener("click", () => {
  laurel.report("asteroids_destroyed", 1);
  show("count", String(++count));
});
setInterval(() => show("pending", String(laurel.pending)), 250);

laurel.onUnlock((unlock) => {
  show("toast", `Unlocked: ${unlock.achievement.title}`);
  void refresh();
});

refresh().then(
  () => show("status", "Connected"),
  (e) => show("status", `Cannot reach Laurel: ${e.message}`),
);
