// Prepared statements are made once per database handle and reused.
import type { DB } from './open.js';

/** Wraps a factory of statements so each database handle gets its own set, made on first use. */
export function perDb<T>(make: (db: DB) => T): (db: DB) => T {
  const cache = new WeakMap<DB, T>();
  return (db) => {
    let s = cache.get(db);
    if (!s) {
      s = make(db);
      cache.set(db, s);
    }
    return s;
  };
}
