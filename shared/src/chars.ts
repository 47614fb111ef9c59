// Characters as a reader counts them, the one rule of the server's schemas and the widget's
// counter. Free of zod, so the widget bundles it without the schemas.

const graphemes = typeof Intl !== 'undefined' && 'Segmenter' in Intl ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : null;

/**
 * True when `text` has at most `max` characters as a reader counts them (grapheme clusters): an
 * emoji with its skin tone or ZWJ parts, or a letter with combining accents, is one character.
 */
export function withinChars(text: string, max: number): boolean {
  // UTF-16 units are never fewer than graphemes: short text needs no segmenting.
  if (text.length <= max) return true;
  if (!graphemes) return [...text].length <= max;
  let n = 0;
  for (const _ of graphemes.segment(text)) if (++n > max) return false;
  return true;
}

/** How many characters `text` has, counted as withinChars counts them. */
export function countChars(text: string): number {
  if (!graphemes) return [...text].length;
  let n = 0;
  for (const _ of graphemes.segment(text)) n++;
  return n;
}
