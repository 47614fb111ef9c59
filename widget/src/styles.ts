// The widget's CSS, applied through adoptedStyleSheets (no <style>, no style=), in px only so a
// page's root font size cannot resize it. `:host` rules are !important: inside a shadow tree
// those beat even the page's own !important rules on the host element.
// Fields are 16px: iOS Safari zooms the page into any smaller field a visitor taps.
// The focus ring's selector outranks `.launcher`, whose drop shadow would otherwise replace it.
// Forced colours (Windows High Contrast) drop box-shadow but paint outlines in a system colour: the
// transparent outlines are the focus ring and the edges of launcher, panel and bubbles there.
// `all:initial` leaves `direction` alone: .root sets ltr for the English UI (messages keep dir=auto).
// overflow-wrap is inherited: set once on the list, it reaches every bubble and name label.
// No fallbacks where every browser with constructable stylesheets (required, see widget.tsx) has
// the real thing: system-ui, and env(safe-area-inset-*), which is 0 without a notch.
// The theme colours are one rule for the four elements painted in them.
// The full-screen layout is for screens under 480px wide or tall (a phone either way up), written as
// one `not ... and ...` query rather than a comma list, which happy-dom (the unit tests) cannot read.
export const CSS = `\
:host{all:initial!important;display:block!important;position:fixed!important;top:0!important;left:0!important;width:0!important;height:0!important;pointer-events:none!important;z-index:var(--pz,2147483000)!important}\
*{box-sizing:border-box;margin:0;padding:0;font:inherit;color:inherit}\
.root{font:14px/1.45 system-ui,sans-serif;color:#111;direction:ltr}\
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}\
button{cursor:pointer;border:0;background:none;pointer-events:auto}\
:focus{outline:none}\
.launcher,.panel,.m{outline:1px solid transparent}\
.root :focus-visible{outline:2px solid transparent;box-shadow:0 0 0 2px #fff,0 0 0 5px #000}\
.launcher,.head,.m.visitor,.send{background:var(--pc);color:var(--pf)}\
.launcher{position:fixed;right:20px;bottom:calc(20px + env(safe-area-inset-bottom));width:56px;height:56px;border-radius:28px;display:flex;align-items:center;justify-content:center;box-shadow:0 4px 16px rgba(0,0,0,.25)}\
.launcher svg{width:26px;height:26px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}\
.badge{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#b00020;color:#fff;font-size:12px;font-weight:700;line-height:22px;text-align:center}\
.panel{position:fixed;right:20px;bottom:calc(88px + env(safe-area-inset-bottom));width:370px;max-width:calc(100vw - 40px);height:580px;max-height:calc(100vh - 112px);display:flex;flex-direction:column;background:#fff;border-radius:12px;box-shadow:0 8px 40px rgba(0,0,0,.28);overflow:hidden;pointer-events:auto}\
.left .launcher,.left .panel{right:auto;left:20px}\
.head{display:flex;align-items:center;gap:8px;padding:12px 12px 12px 16px}\
.head h2{flex:1;font-size:16px;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\
.x{width:36px;height:36px;border-radius:18px;font-size:24px;line-height:36px}\
.msgs{flex:1;overflow-y:auto;list-style:none;padding:16px;display:flex;flex-direction:column;gap:8px;overscroll-behavior:contain;overflow-wrap:anywhere}\
.m{max-width:85%;padding:8px 12px;border-radius:12px;white-space:pre-wrap;background:#eef0f3;align-self:flex-start}\
.m.visitor{align-self:flex-end}\
.b{display:block}\
.n{margin:0 12px -6px;font-size:12px;color:#555}\
.m a{text-decoration:underline}\
.m.failed{box-shadow:0 0 0 2px #b00020}\
.st{display:block;font-size:12px;opacity:.9}\
.st button{margin-left:6px;padding:2px 8px;border-radius:6px;background:#fff;color:#b00020;font-weight:600}\
.note{padding:8px 16px;font-size:13px;background:#fff4e5;color:#5c3b00}\
.who{display:flex;gap:8px;padding:8px 16px 0}\
.who input{flex:1;min-width:0;height:36px;padding:0 8px;border:1px solid #767676;border-radius:6px;background:#fff;font-size:16px}\
.err{padding:4px 16px 0;font-size:12px;color:#b00020}\
.compose{position:relative;display:flex;align-items:flex-end;gap:8px;padding:12px 16px;border-top:1px solid #e3e5e8}\
.compose textarea{flex:1;min-height:40px;max-height:120px;padding:9px 10px;border:1px solid #767676;border-radius:8px;background:#fff;resize:none;font-size:16px;line-height:20px;field-sizing:content}\
.send{height:40px;padding:0 14px;border-radius:8px;font-weight:600}\
.send:disabled{opacity:.55;cursor:default}\
.count{position:absolute;right:16px;top:-18px;padding:0 4px;background:#fff;font-size:11px;color:#555}\
.count.over{color:#b00020;font-weight:700}\
@media not all and (min-width:480px) and (min-height:480px){\
.panel{top:var(--pvt,0px);left:0;right:0;bottom:auto;width:100%;max-width:none;height:var(--pvh,100%);max-height:none;border-radius:0;padding:env(safe-area-inset-top) env(safe-area-inset-right) env(safe-area-inset-bottom) env(safe-area-inset-left)}\
.left .panel{left:0}\
.open .launcher{display:none}\
}\
`;
