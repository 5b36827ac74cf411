import { DraftError } from "./editor";
import type { DefinitionsFile } from "./types";

/** A pasted definitions file; what is not a JSON object is refused before it is sent. */
export function parseDefinitions(text: string): DefinitionsFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new DraftError("definitions", `the file is not JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new DraftError("definitions", "the file must be a JSON object with `stats` and `achievements`");
  return parsed as DefinitionsFile;
}
