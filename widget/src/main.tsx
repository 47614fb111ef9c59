// Entry of widget.js. Runs on someone else's page: it reads its own tag and must never throw.
import { findScript } from './tag.ts';
import { boot } from './widget.tsx';

// Captured synchronously: currentScript is only set while this script first executes.
const current = document.currentScript;
try {
  boot({ script: findScript(document, current) });
} catch (err) {
  console.error('Parley: the chat widget failed to start.', err);
}
