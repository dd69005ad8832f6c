/** Open a GGUF model and serve it: the library behind `fireopt serve`. */
import { vocabularyFromGguf } from '../formats/gguf-vocabulary.js';
import { tokenizerFromVocabulary } from '../tokenizer/load.js';
import { LlamaCppEngine, type LlamaCppEngineOptions } from '../targets/llama-cpp/engine.js';
import { chatRenderer } from './chat.js';
import { startServer, type RunningServer, type ServeOptions } from './server.js';

export interface ServeModelOptions extends Omit<ServeOptions, 'modelName'>, LlamaCppEngineOptions {
  /** Served model name; defaults to the file name without `.gguf`. */
  modelName?: string;
}

export interface ServingModel extends RunningServer {
  engine: LlamaCppEngine;
  /** `template` when the GGUF ships a chat template, else `fallback`. */
  chatTemplate: 'template' | 'fallback';
}

/** Load `options.model` and listen; `close()` stops the server and releases the model. */
export async function serveModel(options: ServeModelOptions): Promise<ServingModel> {
  const vocabulary = vocabularyFromGguf(options.model);
  const engine = await LlamaCppEngine.open(options);
  try {
    const tokenizer = await tokenizerFromVocabulary(vocabulary, { path: options.model });
    const tokenBytes = (id: number) => tokenizer.tokenBytes(id);
    const text = (id: number | undefined) => (id === undefined ? '' : tokenizer.tokenPiece(id));
    const chat = chatRenderer(vocabulary.chatTemplate, {
      bosText: text(vocabulary.bosId),
      eosText: text(vocabulary.eosId),
    });
    const modelName = options.modelName ?? engine.identity.model.replace(/\.gguf$/i, '');
    const server = await startServer(
      { engine, tokenBytes, chat },
      { host: options.host, port: options.port, modelName, maxBodyBytes: options.maxBodyBytes },
    );
    return {
      ...server,
      engine,
      chatTemplate: chat.kind,
      close: async () => {
        await server.close();
        await engine.close();
      },
    };
  } catch (error) {
    await engine.close();
    throw error;
  }
}
