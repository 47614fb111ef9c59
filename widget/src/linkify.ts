// Splits message text into plain strings and links; only http, https and mailto become links.

export type Part = string | { href: string; text: string };

const CANDIDATE = /\b(?:https?:\/\/|mailto:)[^\s<>"]+/gi;
const SAFE = ['http:', 'https:', 'mailto:'];

/** Text and link parts of `text`, in order. Never produces HTML: the caller renders text nodes. */
export function linkify(text: string): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(CANDIDATE)) {
    let raw = m[0];
    // Trailing punctuation belongs to the sentence, except a ")" closing one opened inside the URL.
    while (/[.,;:!?'\]}>)]$/.test(raw) && !(raw.endsWith(')') && count(raw, '(') >= count(raw, ')'))) {
      raw = raw.slice(0, -1);
    }
    const href = safeHref(raw);
    if (!href) continue;
    const start = m.index ?? 0;
    if (start > last) parts.push(text.slice(last, start));
    parts.push({ href, text: raw });
    last = start + raw.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

function count(s: string, ch: string): number {
  return s.split(ch).length - 1;
}

function safeHref(raw: string): string | null {
  try {
    const url = new URL(raw);
    return SAFE.includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}
