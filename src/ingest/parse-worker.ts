/**
 * A parse worker: runs `RecordProcessor` on blocks of JSON Lines sent by the main thread (see
 * parse-pool.ts) and sends back each block's encoded rows, transferring their buffers.
 */
import { parentPort } from 'node:worker_threads';
import { encodedBuffers } from './columns.js';
import { RecordProcessor } from './process.js';
import type { BlockRequest, BlockResponse } from './parse-pool.js';

const port = parentPort;
if (!port) throw new Error('parse-worker.js runs only as a worker thread');

let processor: RecordProcessor | undefined;

port.on('message', (request: BlockRequest) => {
  let response: BlockResponse;
  try {
    if (request.settings.format === null || request.settings.format === 'openai-batch') {
      throw new Error(`parse worker: format ${request.settings.format} must be read on the main thread`);
    }
    // Batch API output needs the main thread's index of batch inputs, so it is never sent here.
    if (!processor) processor = new RecordProcessor(request.settings, () => undefined);
    processor.settings = request.settings;
    let failure = 0;
    for (let i = 0; i < request.lines.length; i++) {
      if (failure < request.failures.length && request.failures[failure].index === i) {
        processor.add(request.failures[failure++].record);
      } else {
        processor.addLine(request.buffers[request.source[i]].subarray(request.starts[i], request.ends[i]), request.lines[i]);
      }
    }
    response = { ok: true, block: processor.take() };
  } catch (error) {
    const failed = error instanceof Error ? error : new Error(String(error));
    processor = undefined; // its state is unknown after a failure
    port.postMessage({ ok: false, message: failed.message, stack: failed.stack ?? '' } satisfies BlockResponse);
    return;
  }
  const { block } = response;
  port.postMessage(response, [...encodedBuffers(block.train), ...encodedBuffers(block.heldout), block.sampleKeys.buffer as ArrayBuffer, block.sampleHeldout.buffer as ArrayBuffer]);
});
