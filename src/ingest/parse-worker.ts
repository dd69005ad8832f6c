/**
 * A parse worker: runs `RecordProcessor` on blocks of JSON Lines sent by the main thread (see
 * parse-pool.ts) and sends back each block's encoded rows packed into one ArrayBuffer, with the
 * block's input chunk, transferring both.
 */
import { parentPort } from 'node:worker_threads';
import { RecordProcessor } from './process.js';
import type { BlockRequest, BlockResponse, WorkerReady } from './parse-pool.js';

const port = parentPort;
if (!port) throw new Error('parse-worker.js runs only as a worker thread');

const MAX_SPARES = 4;
let processor: RecordProcessor | undefined;
/** Memory of blocks the main thread has consumed, to pack the next blocks into. */
const spares: ArrayBuffer[] = [];

port.on('message', (request: BlockRequest) => {
  let response: BlockResponse;
  for (const spare of request.spares) if (spares.length < MAX_SPARES) spares.push(spare);
  try {
    if (request.settings.format === null || request.settings.format === 'openai-batch') {
      throw new Error(`parse worker: format ${request.settings.format} must be read on the main thread`);
    }
    // Batch API output needs the main thread's index of batch inputs, so it is never sent here.
    if (!processor) processor = new RecordProcessor(request.settings, () => undefined);
    processor.settings = request.settings;
    const chunk = Buffer.from(request.chunk.buffer, request.chunk.byteOffset, request.chunk.byteLength);
    const head = request.head && Buffer.from(request.head.buffer, request.head.byteOffset, request.head.byteLength);
    processor.addLines({ ...request, chunk, head }, 0, request.lines.length, 0);
    response = { ok: true, block: processor.take(spares), chunk: request.chunk.buffer as ArrayBuffer };
  } catch (error) {
    const failed = error instanceof Error ? error : new Error(String(error));
    processor = undefined; // its state is unknown after a failure
    port.postMessage({ ok: false, message: failed.message, stack: failed.stack ?? '' } satisfies BlockResponse);
    return;
  }
  port.postMessage(response, [response.block.memory as ArrayBuffer, response.chunk]);
});
port.postMessage({ ready: true } satisfies WorkerReady);
