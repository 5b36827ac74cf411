// A game process for the kill tests: `queue` reports events and waits to be killed before
// sending them; `send` reports and sends them (through a proxy that holds the answer back)
// and waits to be killed; `flush` starts again on the same queue file and sends what it
// holds. Settings come from the environment (URL, TOKEN, STORE, COUNT).
import { Laurel } from "../dist/index.js";
import { FileStore } from "../dist/node.js";

const [mode] = process.argv.slice(2);
const laurel = new Laurel({
  url: process.env.URL,
  token: process.env.TOKEN,
  store: new FileStore(process.env.STORE),
  flushIntervalMs: 0,
});
const count = Number(process.env.COUNT ?? 5);
if (mode === "queue" || mode === "send") {
  for (let i = 0; i < count; i++) laurel.report("bananas", 1);
  // On disk now: the test kills after this line.
  await laurel.persisted();
  console.log("queued");
  if (mode === "send") void laurel.flush();
  setInterval(() => {}, 1000);
} else if (mode === "flush") {
  const result = await laurel.flush();
  console.log(JSON.stringify({ ...result, error: result.error?.message }));
  laurel.close();
}
