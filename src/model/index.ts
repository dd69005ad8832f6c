/** The model core: a Llama-architecture transformer in TensorFlow.js, its sizes, loss and decoding. */
export {
  LlamaModel,
  rmsNorm,
  applyRope,
  swiglu,
  rotateHalfOrder,
  type LlamaParams,
  type LayerParams,
  type LayerCache,
} from './llama.js';
export {
  crossEntropyLoss,
  softCrossEntropySums,
  type SparseCoefficients,
  type SoftCrossEntropyOptions,
} from './loss.js';
export {
  DecodeSession,
  generate,
  nextTokenDistributions,
  type GenerateOptions,
  type GenerateResult,
} from './decode.js';
export { argmax, sampleToken, type SamplingOptions } from './sampling.js';
export { randomWeights, type InitOptions } from './init.js';
export { SeededRandom } from './random.js';
export { presets, presetConfig, isPresetName, swigluHiddenDim, type PresetName, type ModelShape } from './presets.js';
export { headDim, configProblems, type LlamaConfig } from './config.js';
export type { LlamaWeights, LayerWeights, DenseTensor } from './weights.js';
