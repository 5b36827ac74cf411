// Server-Sent Events read from a fetch stream (EventSource cannot send the Authorization
// header): the parser is fed text as it arrives and hands out whole events.

/** One event of the stream. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** A parser that keeps partial lines between chunks. */
export function parseSse(): { push(chunk: string): SseEvent[] } {
  let buffer = "";
  let event = "message";
  let data: string[] = [];
  let id: string | undefined;
  return {
    push(chunk: string): SseEvent[] {
      buffer += chunk;
      const out: SseEvent[] = [];
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (data.length) out.push({ event, data: data.join("\n"), ...(id === undefined ? {} : { id }) });
          event = "message";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "id") id = value;
      }
      return out;
    },
  };
}
