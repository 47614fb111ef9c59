// How far V8 lets old space grow past its live set, for the server's processes.
//
// After each full collection V8 sets the next one's threshold at the live set times a factor it
// picks from how fast the process allocates: up to 4x for a busy server. Under load the server
// promotes about 10 MB/s of objects that die soon after (about 2 MB per scavenge at 3,000 widget
// writes/s), so old space filled to about 60 MB over a ~15 MB live set before it was collected:
// peak RSS 165-175 MB in `pnpm bench`. A fixed factor of 1.5 measured 127-132 MB at the same
// throughput (README, Performance).
//
// V8 reads this flag at every full collection, so setting it once the process runs takes effect
// (heap.test.ts fails without it). An operator who sets the flag keeps their choice.
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 50;

const OPERATOR_FLAG = /--heap[-_]growing[-_]percent\b/;

/** Sets V8's heap growing factor unless the operator chose one; returns whether it did. */
export function tuneHeap(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  if (OPERATOR_FLAG.test(`${execArgv.join(' ')} ${nodeOptions}`)) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
