/** Build the configured target engine. Engines are imported lazily: only the one used is loaded. */
import type { TargetConfig } from './config.js';
import type { TargetEngine } from './engine.js';
import type { TokenAligner } from './openai/alignment.js';
import type { ReplicaChange } from './openai/http.js';

export interface TargetEngineDeps {
  /** openai: the API key's value, read by the CLI from the variable `api_key_env` names. */
  apiKey?: string;
  /** openai: the target tokenizer, to map token text to ids when the server returns no ids. */
  tokenizer?: TokenAligner;
  /** openai: told about each retried request. */
  onRetry?: (event: { path: string; attempt: number; reason: string }) => void;
  /** openai with several replicas: told when one is taken out of service or put back. */
  onReplicaChange?: (event: ReplicaChange) => void;
  /** tfjs: told which TensorFlow.js backend was chosen. */
  log?: (line: string) => void;
}

/** Open the engine `config` describes; the caller must `close()` it. */
export async function createTargetEngine(config: TargetConfig, deps: TargetEngineDeps = {}): Promise<TargetEngine> {
  switch (config.engine) {
    case 'llama-cpp': {
      const { LlamaCppEngine } = await import('./llama-cpp/engine.js');
      return LlamaCppEngine.open({
        model: config.model,
        contextSize: config.context_size,
        threads: config.threads,
        sequences: config.sequences,
        batchSize: config.batch_size,
        kvCacheType: config.kv_cache_type,
      });
    }
    case 'openai': {
      const { OpenAiEngine } = await import('./openai/engine.js');
      return OpenAiEngine.open(config, deps);
    }
    case 'tfjs': {
      const { TfjsEngine } = await import('./tfjs/engine.js');
      return TfjsEngine.open({
        model: config.model,
        tokenizer: config.tokenizer,
        backend: config.backend,
        log: deps.log,
      });
    }
  }
}
