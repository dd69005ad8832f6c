/**
 * `fireopt serve --model <gguf>`: an OpenAI-compatible HTTP server over a local GGUF model
 * (the llama-cpp target engine). Runs until SIGINT or SIGTERM, then closes cleanly.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { ContextGetter } from '../context.js';
import { untilStopSignal } from '../safety.js';

interface ServeFlags {
  model: string;
  host: string;
  port: string;
  contextSize: string;
  threads: string;
  sequences: string;
  name?: string;
}

function integer(flag: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UsageError(`${flag} ${text}: expected an integer from ${min} to ${max}`);
  return value;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('serve')
    .description('serve a GGUF model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions)')
    .requiredOption('--model <gguf>', 'GGUF model file')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 = any free port)', '8000')
    .option('--context-size <tokens>', 'context window per sequence (prompt + completion)', '2048')
    .option('--threads <n>', 'CPU threads per evaluation (0 = all cores; 1 is fastest for tiny models)', '1')
    .option('--sequences <n>', 'requests evaluated in parallel', '1')
    .option('--name <model>', 'model name served in /v1/models (default: the file name)')
    .action(async (flags: ServeFlags) => {
      const { io, globals } = context();
      const options = {
        model: flags.model,
        host: flags.host,
        port: integer('--port', flags.port, 0, 65535),
        contextSize: integer('--context-size', flags.contextSize, 8),
        threads: integer('--threads', flags.threads, 0),
        sequences: integer('--sequences', flags.sequences, 1, 64),
        batchSize: 512,
        modelName: flags.name,
      };
      const { serveModel } = await import('../../serve/open.js');
      const serving = await serveModel(options);
      const summary = {
        url: `${serving.url}/v1`,
        model: options.modelName ?? serving.engine.identity.model.replace(/\.gguf$/i, ''),
        chatTemplate: serving.chatTemplate,
      };
      if (globals.json) io.stdout(`${JSON.stringify(summary)}\n`);
      else
        io.stderr(
          `fireopt serve: ${summary.model} on ${summary.url} (chat template: ${summary.chatTemplate}); Ctrl-C stops\n`,
        );
      await untilStopSignal(io);
      await serving.close();
    });
}
