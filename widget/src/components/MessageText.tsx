import { linkify } from '../linkify.ts';

/**
 * A message body as text nodes; only http(s) and mailto URLs become links, opened safely. Its direction
 * comes from its own first letters, so Arabic or Hebrew reads right to left in a left-to-right widget.
 */
export function MessageText({ text }: { text: string }) {
  return (
    <span class="b" dir="auto">
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
