/** One field a problem names, as the server's `errors` list gives it. */
export interface FieldError {
  field: string;
  reason: string;
  /** In a batch of events, which one (from 0). */
  index?: number;
  [more: string]: unknown;
}

/**
 * An error as a value: the server's problem (RFC 9457) `type`, `status`, `title`, `detail`
 * and the fields it names, or a `network`, `timeout` or `aborted` failure of the call
 * itself. Read calls reject with it; the flusher hands it to `onError` and never throws.
 */
export class LaurelError extends Error {
  /** The problem type (`https://laurel.dev/problems/...`), or `network`, `timeout`, `aborted`. */
  readonly type: string;
  /** The HTTP status (0 when no answer came). */
  readonly status: number;
  readonly title: string;
  readonly detail?: string;
  /** The fields the problem names, with why. */
  readonly errors: FieldError[];
  /** Seconds the server asked to wait (`Retry-After`), when it did. */
  readonly retryAfter?: number;

  constructor(init: {
    type: string;
    status: number;
    title: string;
    detail?: string;
    errors?: FieldError[];
    retryAfter?: number;
  }) {
    super(init.detail ? `${init.title}: ${init.detail}` : init.title);
    this.name = "LaurelError";
    this.type = init.type;
    this.status = init.status;
    this.title = init.title;
    this.detail = init.detail;
    this.errors = init.errors ?? [];
    this.retryAfter = init.retryAfter;
  }

  /** Whether trying the same request again later may work (no answer, 408, 429, 5xx). */
  get retryable(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** The error a failed answer carries: its problem JSON when it has one. */
export async function errorOf(response: Response): Promise<LaurelError> {
  const retry = response.headers.get("retry-after");
  const retryAfter = retry !== null && /^\d+$/.test(retry.trim()) ? Number(retry.trim()) : undefined;
  let problem: Record<string, unknown> = {};
  try {
    problem = (await response.json()) as Record<string, unknown>;
  } catch {
    // Not JSON: the status says it.
  }
  return new LaurelError({
    type: typeof problem.type === "string" ? problem.type : "about:blank",
    status: response.status,
    title: typeof problem.title === "string" ? problem.title : response.statusText || `HTTP ${response.status}`,
    detail: typeof problem.detail === "string" ? problem.detail : undefined,
    errors: Array.isArray(problem.errors) ? (problem.errors as FieldError[]) : [],
    retryAfter,
  });
}

/** A call that got no answer. */
export function networkError(cause: unknown): LaurelError {
  const aborted = cause instanceof Error && cause.name === "AbortError";
  const timeout = cause instanceof Error && cause.name === "TimeoutError";
  return new LaurelError({
    type: aborted ? "aborted" : timeout ? "timeout" : "network",
    status: 0,
    title: aborted ? "aborted" : timeout ? "timed out" : "no answer",
    detail: cause instanceof Error ? cause.message : String(cause),
  });
}
