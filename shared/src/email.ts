// The one rule for a visitor's email address. Free of zod, so the widget checks an address by the
// very pattern the server's schema uses, and never sends one the server would refuse.

/**
 * zod 4's email pattern (z.regexes.email: dot-separated local parts of letters, digits and
 * _'+-, not ending in '; then a dotted domain whose labels do not start with a dash, ending in
 * two or more letters), written shorter for the widget's byte budget: without the u flag, \w is
 * exactly [A-Za-z0-9_] and i folds ASCII only. email.test.ts checks that the two agree.
 */
export const EMAIL_PATTERN = /^([\w'+-]+\.)*[\w'+-]*[\w+-]@([a-z\d][a-z\d-]*\.)+[a-z]{2,}$/i;

/** At most 254 characters, the longest address SMTP can deliver to (RFC 5321 with its errata). */
export const MAX_EMAIL = 254;
