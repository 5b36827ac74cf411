// RFC 9457 problem documents as the server answers them, and what the console shows of
// them: a message per field, so an editor can put each next to its input.

/** One refused field of a problem document (`errors[]`). */
export interface ProblemField {
  index?: number;
  field?: string;
  reason: string;
  code?: { code: string; [k: string]: unknown };
}

/** A problem document. */
export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string;
  errors?: ProblemField[];
}

/** An answer that was not a success: the problem and the HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ApiError";
  }
}

/**
 * The problem's field errors by field path (`conditions[0].at_least`), the ones without a
 * field under `""`. Several reasons for one field are joined.
 *
 * @example fieldErrors(problem)["title"] // "must not be empty"
 */
export function fieldErrors(problem: Problem): Record<string, string> {
  const out: Record<string, string> = {};
  for (const error of problem.errors ?? []) {
    const key = normalizeField(error.field ?? "");
    out[key] = out[key] ? `${out[key]}; ${error.reason}` : error.reason;
  }
  if (!problem.errors?.length && problem.detail) {
    // A body that does not parse names the field in backquotes in `detail`.
    const named = /`([^`]+)`/.exec(problem.detail);
    out[named ? normalizeField(named[1]) : ""] = problem.detail;
  }
  return out;
}

/** `conditions.0.stat` and `conditions[0].stat` name the same field. */
export function normalizeField(field: string): string {
  return field.replace(/\.(\d+)(?=\.|$)/g, "[$1]").replace(/^\//, "").replace(/\//g, ".");
}

/** Whether the error is the server saying another admin saved first (412). */
export function isConflict(error: unknown): error is ApiError {
  return error instanceof ApiError && error.status === 412;
}
