// The one element the widget adds to the page, its shadow root and its stylesheets.
import { CSS } from './styles.ts';

export const HOST_TAG = 'parley-widget';

export interface Host {
  host: HTMLElement;
  shadow: ShadowRoot;
  /**
   * Sets the host's CSS custom properties (theme, z-index, viewport) through CSSOM, never style=.
   * Values must be checked by the caller, as every one is: a #rrggbb colour (themeColor, textOn),
   * a whole number (data-z-index) or a rounded px length (the visual viewport).
   */
  setVars(vars: Record<string, string>): void;
}

/**
 * Creates the host element. A custom element name, not a <div>, so page rules such as
 * `div { display: none !important }` never match it.
 */
export function createHost(doc: Document): Host {
  const host = doc.createElement(HOST_TAG);
  const shadow = host.attachShadow({ mode: 'open' });
  const View = doc.defaultView as (Window & typeof globalThis) | null;
  const Sheet = View?.CSSStyleSheet ?? CSSStyleSheet;
  const base = new Sheet();
  base.replaceSync(CSS);
  const vars = new Sheet();
  shadow.adoptedStyleSheets = [base, vars];
  const current: Record<string, string> = {};
  return {
    host,
    shadow,
    setVars(next) {
      Object.assign(current, next);
      const body = Object.entries(current)
        .map((kv) => kv.join(':'))
        .join(';');
      vars.replaceSync(`:host{${body}}`);
    },
  };
}
