// Linkifying, contrast and storage: the small pure parts.
import { describe, expect, it } from 'vitest';
import { contrast, textOn, themeColor } from './color.ts';
import { linkify } from './linkify.ts';
import { createStorage } from './storage.ts';

describe('linkify', () => {
  it('links http, https and mailto only, without trailing punctuation', () => {
    expect(linkify('see (https://a.example/x_(y)), http://b.example. mail mailto:a@b.example!')).toEqual([
      'see (',
      { href: 'https://a.example/x_(y)', text: 'https://a.example/x_(y)' },
      '), ',
      { href: 'http://b.example/', text: 'http://b.example' },
      '. mail ',
      { href: 'mailto:a@b.example', text: 'mailto:a@b.example' },
      '!',
    ]);
  });

  it.each(['javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'data:text/html,<b>x</b>', 'vbscript:x', 'file:///etc/passwd', '//evil.example'])(
    'leaves %s as plain text',
    (text) => expect(linkify(text)).toEqual([text]),
  );
});

describe('colour contrast', () => {
  it.each(['#2563eb', '#ffd400', '#777777', '#808080', '#000000', '#ffffff', '#ff0000', '#00ff00', '#0000ff', '#7a7a7a'])(
    'text on %s reaches WCAG AA (4.5:1)',
    (color) => expect(contrast(color, textOn(color))).toBeGreaterThanOrEqual(4.5),
  );

  it('falls back to the default colour for anything but #rrggbb', () => {
    expect(themeColor('red; background:url(x)')).toBe('#2563eb');
    expect(themeColor('#ABCDEF')).toBe('#ABCDEF');
  });
});

describe('createStorage', () => {
  it('uses localStorage under parley:<serviceId> and reads it back', () => {
    localStorage.clear();
    const s = createStorage('acme-help');
    expect(s.get()).toBeNull();
    s.set({ ticketId: 't', visitorToken: 'v' });
    expect(JSON.parse(localStorage.getItem('parley:acme-help')!)).toEqual({ ticketId: 't', visitorToken: 'v' });
    expect(createStorage('acme-help').get()).toEqual({ ticketId: 't', visitorToken: 'v' });
    expect(createStorage('other-site').get()).toBeNull();
    s.clear();
    expect(localStorage.getItem('parley:acme-help')).toBeNull();
  });

  it('keeps the value in memory when even reading window.localStorage throws', () => {
    const win = Object.defineProperty({}, 'localStorage', {
      get() {
        throw new DOMException('denied', 'SecurityError');
      },
    }) as Window;
    const s = createStorage('acme-help', win);
    expect(s.get()).toBeNull();
    s.set({ ticketId: 't', visitorToken: 'v' });
    expect(s.get()).toEqual({ ticketId: 't', visitorToken: 'v' });
    s.clear();
    expect(s.get()).toBeNull();
  });

  it('ignores a stored value that is not its own', () => {
    localStorage.setItem('parley:acme-help', '{"nope":1');
    expect(createStorage('acme-help').get()).toBeNull();
    localStorage.clear();
  });
});
