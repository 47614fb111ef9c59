// Theme colour and the text colour that stays readable on it (WCAG 2 contrast).

export const DEFAULT_COLOR = '#2563eb';

/** WCAG relative luminance of a #rrggbb colour. */
export function luminance(hex: string): number {
  const n = parseInt(hex.slice(1), 16);
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin((n >> 16) & 255) + 0.7152 * lin((n >> 8) & 255) + 0.0722 * lin(n & 255);
}

/** Contrast ratio of two #rrggbb colours, 1 to 21. */
export function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** The theme colour if it is a #rrggbb colour, else the default. */
export function themeColor(color: string | undefined): string {
  return color && /^#[0-9a-f]{6}$/i.test(color) ? color : DEFAULT_COLOR;
}

/**
 * White or black, whichever contrasts more with `background`. Pure black (not #111) because the
 * better of the two then always reaches at least 4.58:1, so every theme colour passes AA.
 */
export function textOn(background: string): '#ffffff' | '#000000' {
  // contrast(background, white) >= contrast(background, black), written out (white's luminance is 1,
  // black's 0) so the bundle needs no contrast(): the same answer for every one of the 16.7M colours.
  const l = luminance(background) + 0.05;
  return 1.05 / l >= l / 0.05 ? '#ffffff' : '#000000';
}
