/**
 * A proposer offers draft tokens for a context: a draft model, or a model-free speculator
 * (prompt lookup, suffix tree). Sessions are incremental so that a draft model keeps its KV cache
 * and an n-gram index grows with the context instead of being rebuilt for every position.
 * Sessions are asynchronous because a draft model reads its logits with `await data()` (the only
 * read the webgpu backend has under Node); the model-free ones resolve at once.
 */
import { matchesFromProposals, MAX_DRAFT_TOKENS, type CompletionMatches } from './acceptance.js';

export interface ProposerSession {
  /** Up to k tokens that should follow the current context (fewer, or none, when it has no guess). */
  propose(k: number): Promise<number[]>;
  /** Extend the context with tokens (the target's). */
  append(tokenIds: readonly number[]): Promise<void>;
  /** Free what the session holds (tensors for a draft model). */
  dispose(): void;
}

export interface Proposer {
  /** A stable label for reports: `draft:<dir>`, `prompt-lookup`, `suffix`. */
  readonly name: string;
  /** Start a sequence whose context is `promptIds`. */
  open(promptIds: readonly number[]): Promise<ProposerSession>;
}

/** m_t at every completion position by asking the proposer at each one (k_max tokens each). */
export async function matchesWithProposer(
  proposer: Proposer,
  promptIds: readonly number[],
  completion: readonly number[],
  kMax = MAX_DRAFT_TOKENS,
): Promise<CompletionMatches> {
  const session = await proposer.open(promptIds);
  try {
    const proposals: number[][] = [];
    for (let t = 0; t < completion.length; t++) {
      proposals.push(await session.propose(kMax));
      await session.append([completion[t]]);
    }
    return matchesFromProposals(completion, proposals, kMax);
  } finally {
    session.dispose();
  }
}
