import { iconUrl, playerTexts, type Draft } from "../editor";

/** The achievement as a player sees it, locked and unlocked, in each language. */
export function IconPreview({ draft, langs }: { draft: Draft; langs: string[] }) {
  const locked = iconUrl(draft.locked_icon);
  const unlocked = iconUrl(draft.unlocked_icon) ?? locked;
  return (
    <div class="previews" aria-label="How players see it">
      {[null, ...langs].map((lang) => {
        const texts = playerTexts(draft, lang);
        return (
          <div class="preview-pair" key={lang ?? "default"} role="group" aria-label={`Preview in ${lang ?? "the default language"}`}>
            <h3>{lang ?? "default"}</h3>
            <PreviewCard state="locked" icon={locked} title={draft.visibility === "secret" ? texts.title : texts.title} text={draft.visibility === "secret" ? "Secret achievement" : texts.locked} />
            <PreviewCard state="unlocked" icon={unlocked} title={texts.title} text={texts.unlocked} />
          </div>
        );
      })}
    </div>
  );
}

function PreviewCard({ state, icon, title, text }: { state: "locked" | "unlocked"; icon: string | null; title: string; text: string }) {
  return (
    <figure class={`card ${state}`}>
      {icon ? <img src={icon} alt={`${state} icon`} width={64} height={64} /> : <div class="no-icon" aria-label="no icon" role="img" />}
      <figcaption>
        <strong>{title || "(no title)"}</strong>
        <span>{text}</span>
        <em>{state}</em>
      </figcaption>
    </figure>
  );
}
