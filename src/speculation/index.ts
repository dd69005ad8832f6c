/**
 * Speculative decoding, shared by evaluate (the offline simulator), train (model selection) and
 * export: the acceptance math, proposers (tfjs draft, prompt lookup, suffix tree) and a real
 * llama.cpp loop. No CLI or file IO here.
 */
export * from './acceptance.js';
export type { Proposer, ProposerSession } from './proposer.js';
export { matchesWithProposer } from './proposer.js';
export { PromptLookupProposer, NgramIndex, DEFAULT_PROMPT_LOOKUP, type PromptLookupOptions } from './prompt-lookup.js';
export { SuffixTreeProposer, DEFAULT_SUFFIX_TREE, type SuffixTreeOptions } from './suffix-tree.js';
export {
  DraftModel,
  DraftModelProposer,
  scoreDraftRows,
  teacherForcedDraft,
  type CompletionRow,
  type TeacherForcedInput,
  type TeacherForcedOutput,
  type TeacherForcedOptions,
} from './draft-proposer.js';
export {
  calibrationSplit,
  chooseMinMatch,
  type HybridTrial,
  hybridMatches,
  type SuffixMatches,
  suffixMatches,
  suffixMatchesOfRows,
} from './hybrid.js';
