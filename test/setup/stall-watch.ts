/**
 * Names the test that blocks its worker's event loop. A vitest fork answers the runner over an RPC
 * with a fixed 60 s timeout; a test that keeps the event loop busy longer (synchronous work,
 * spawnSync, in-process training that never yields) makes the whole run fail with
 * "Timeout calling onTaskUpdate" although every test passed. This prints each stall over 20 s with
 * the test that caused it, so the culprit can be moved to a spawned process or made to yield.
 */
import { afterAll, expect } from 'vitest';

const STALL_MS = 20_000;
const stalls: string[] = [];
let last = Date.now();
const timer = setInterval(() => {
  const now = Date.now();
  if (now - last > STALL_MS) {
    const { currentTestName, testPath } = expect.getState();
    stalls.push(`${((now - last) / 1000).toFixed(0)} s in ${testPath} "${currentTestName ?? '(a hook)'}"`);
  }
  last = now;
}, 1000);
timer.unref();

afterAll(() => {
  for (const stall of stalls.splice(0)) console.warn(`event loop blocked ${stall} (vitest's RPC timeout is 60 s)`);
});
