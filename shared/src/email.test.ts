// The visitor email rule: the widget's pattern is the server's, and both refuse what zod refuses.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EMAIL_PATTERN, MAX_EMAIL } from './email.js';
import { Email } from './schemas.js';

const accepted = (v: string) => Email.safeParse(v).success;

describe('EMAIL_PATTERN', () => {
  it.each(['ada@example.com', "o'neil@example.co.uk", 'a+tag@sub.example.io', 'A_B@EXAMPLE.COM', 'a.b-c@x-y.example.museum', '1@2.ab'])(
    'takes %s, as the API does',
    (v) => {
      expect(EMAIL_PATTERN.test(v)).toBe(true);
      expect(accepted(v)).toBe(true);
    },
  );

  it.each([
    'jose@example.c', // a one-letter top-level domain
    'josé@example.com', // a letter outside ASCII
    'jose@exämple.com',
    'a..b@example.com',
    '.a@example.com',
    'a.@example.com',
    "a'@example.com",
    'a@-example.com',
    'a@example',
    'a@example.com.',
    'a@example.c0m',
    'a b@example.com',
    'a@b@example.com',
    '@example.com',
    'a@',
    ' a@example.com',
    'a@example.com\n',
    'ſ@example.com', // folds to S only under the u flag
    'a@example.\u212Aom', // the Kelvin sign, likewise
  ])('refuses %j, as the API does', (v) => {
    expect(EMAIL_PATTERN.test(v)).toBe(false);
    expect(accepted(v)).toBe(false);
  });

  it('agrees with zod 4\'s own email pattern on any string of the characters that matter', () => {
    const unit = fc.constantFrom(...'aZ09_.-+\'@ é\u212Aſ'.split(''), 'x', 'y');
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 24 }), (v) => EMAIL_PATTERN.test(v) === z.regexes.email.test(v)),
      { numRuns: 20_000 },
    );
  });

  it('agrees with zod 4 on address-shaped strings, most of them valid', () => {
    const label = fc.string({ unit: fc.constantFrom(...'abcXYZ019-_\'+.é'.split('')), minLength: 0, maxLength: 6 });
    const address = fc.tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom('com', 'io', 'c', 'COM', 'c0', ''))
      .map(([local, domain, tld]) => `${local.join('.')}@${domain.join('.')}.${tld}`);
    let valid = 0;
    fc.assert(
      fc.property(address, (v) => {
        const ours = EMAIL_PATTERN.test(v);
        if (ours) valid++;
        return ours === z.regexes.email.test(v);
      }),
      { numRuns: 20_000 },
    );
    expect(valid).toBeGreaterThan(100); // the generator really reaches the accepting side
  });
});

describe('Email (the schema of visitor.email)', () => {
  it(`takes an address of ${MAX_EMAIL} characters and refuses one of ${MAX_EMAIL + 1}`, () => {
    const at = (n: number) => `${'a'.repeat(n - '@example.com'.length)}@example.com`;
    expect(at(MAX_EMAIL)).toHaveLength(MAX_EMAIL);
    expect(accepted(at(MAX_EMAIL))).toBe(true);
    expect(accepted(at(MAX_EMAIL + 1))).toBe(false);
  });

  it('is exactly the pattern within the length limit', () => {
    const unit = fc.constantFrom(...'ab.-@\'é'.split(''), 'com');
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 30 }), (v) => accepted(v) === (v.length <= MAX_EMAIL && EMAIL_PATTERN.test(v))),
      { numRuns: 5_000 },
    );
  });
});
