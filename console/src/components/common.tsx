// Small pieces every screen uses: an error box, a confirmation dialog, a labelled field.

import { useEffect, useRef } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { ApiError } from "../problem";

/** An error from the server (its problem's detail) or elsewhere, announced to screen readers. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof ApiError ? `${error.problem.title} (${error.status}): ${error.problem.detail ?? ""}` : String(error instanceof Error ? error.message : error);
  return (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

/** A modal question with a confirm and a cancel button; focus starts on cancel. */
export function ConfirmDialog(props: { open: boolean; title: string; children: ComponentChildren; confirm: string; onConfirm: () => void; onCancel: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (props.open && !d.open) d.showModal();
    if (!props.open && d.open) d.close();
  }, [props.open]);
  return (
    <dialog ref={dialog} aria-labelledby="confirm-title" onCancel={props.onCancel}>
      <h2 id="confirm-title">{props.title}</h2>
      <div>{props.children}</div>
      <div class="actions">
        <button type="button" autofocus onClick={props.onCancel}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={props.onConfirm}>
          {props.confirm}
        </button>
      </div>
    </dialog>
  );
}

/** A label, its control and the server's message for that field, tied together for assistive tech. */
export function Field(props: { id: string; label: string; error?: string; hint?: string; children: ComponentChildren }) {
  return (
    <div class={props.error ? "field invalid" : "field"}>
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.hint && (
        <small id={`${props.id}-hint`} class="hint">
          {props.hint}
        </small>
      )}
      {props.error && (
        <small id={`${props.id}-error`} class="field-error" role="alert">
          {props.error}
        </small>
      )}
    </div>
  );
}

/** The attributes that tie an input to its field's message. */
export function described(id: string, error?: string, hint?: string) {
  const ids = [error ? `${id}-error` : "", hint ? `${id}-hint` : ""].filter(Boolean).join(" ");
  return { id, "aria-invalid": error ? true : undefined, "aria-describedby": ids || undefined };
}

/** A time as the console shows it: local, to the second, with the RFC 3339 value as title. */
export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span>—</span>;
  return <time dateTime={at} title={at}>{new Date(at).toLocaleString()}</time>;
}
