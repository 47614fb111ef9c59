// `parley key create|list|revoke|rotate`: to be completed with the keys issue.
import { UsageError } from './args.js';

export function keyCommand(argv: string[]): number {
  void argv;
  throw new UsageError('key commands are not available yet');
}
