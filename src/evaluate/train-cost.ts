/**
 * c for the drafts of training's selection, measured exactly as eval measures a draft (the same
 * function, the same `eval.cost` settings), so selection, eval and the promotion gate share one cost
 * model. Training calls it through a hook (train/candidates.ts `MeasureDraftCost`): stages do not
 * import each other, the CLI and the pipeline connect them.
 */
import type { LlamaWeights } from '../model/weights.js';
import type { EvalConfig } from './config.js';
import { measureDraftCost } from './cost.js';
import { measuresCost } from './index.js';

/** c of one draft and where it came from; `verifyCostByK[k − 1]`: the target's verification of k + 1 tokens. */
export interface MeasuredDraftCost {
  ratio: number;
  source: string;
  verifyCostByK: number[];
}

/**
 * A measurement hook for training when `config.cost` measures (llama-cpp, or auto with a target GGUF),
 * else undefined.
 */
export function draftCostMeter(
  config: EvalConfig,
  log: (line: string) => void,
): ((weights: LlamaWeights) => Promise<MeasuredDraftCost>) | undefined {
  if (!measuresCost(config)) return undefined;
  return async (weights) => {
    // Only the shape is timed: the draft's own rows, placeholder token texts (cost.ts).
    const m = await measureDraftCost({ weights, target: {}, training: {} }, config, log);
    const settings = `${m.threads} thread(s), context ${m.context_size}, ${m.context_tokens} cached tokens`;
    return {
      ratio: m.cost_ratio,
      source: `measured in llama.cpp against ${m.target_model} (${settings})`,
      verifyCostByK: m.verify_cost_by_k,
    };
  };
}
