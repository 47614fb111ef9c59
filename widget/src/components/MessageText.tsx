import { linkify } from '../linkify.ts';

/** A message body as text nodes; only http(s) and mailto URLs become links, opened safely. */
export function MessageText({ text }: { text: string }) {
  return (
    <span class="b">
      {linkify(text).map((p) =>
        typeof p === 'string' ? (
          p
        ) : (
          <a href={p.href} target="_blank" rel="noopener noreferrer">
            {p.text}
          </a>
        ),
      )}
    </span>
  );
}
