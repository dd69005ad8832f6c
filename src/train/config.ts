/**
 * The `train` config section. By default it names a time budget, not hyper-parameters: fireopt
 * trains every candidate of `search` (model sizes × learning rates) for a share of the budget and
 * keeps the one with the best expected speed-up. `select: off` trains one draft with `model` and `lr`.
 *
 * ```yaml
 * train:
 *   targets: out/targets        # the distill output (train.arrow, heldout.arrow)
 *   out: out/draft-run          # run folder: draft/ (the winner), metrics, plot, leaderboard
 *   time_budget_s: 600          # automatic selection: the whole search
 * ---
 * train:
 *   targets: out/targets
 *   out: out/draft-run
 *   select: off
 *   model: { preset: draft-tiny }
 *   lr: 0.003
 *   max_steps: 2000
 * ```
 */
import { z } from 'zod';

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export const INIT_CHOICES = ['auto', 'random', 'target', 'draft'] as const;
const PRESET_NAMES = ['draft-nano', 'draft-tiny', 'draft-small', 'draft-base'] as const;

/** A draft size: a preset, optionally with some of its numbers replaced. */
export const modelSpecSchema = z.strictObject({
  preset: z.enum(PRESET_NAMES).default('draft-nano'),
  dim: z.number().int().positive().optional(),
  hidden_dim: z.number().int().positive().optional(),
  n_layers: z.number().int().positive().optional(),
  n_heads: z.number().int().positive().optional(),
  n_kv_heads: z.number().int().positive().optional(),
  tied_embeddings: z.boolean().optional(),
});

export const trainSchema = z
  .strictObject({
    /** Targets directory written by `fireopt distill` (or the `--targets` flag). */
    targets: z.string().min(1).optional(),
    /** Run folder (or `--out`): `draft/` is the chosen draft checkpoint. */
    out: z.string().min(1).optional(),
    /** TensorFlow.js backend: `auto` takes tfjs-node-gpu, then tfjs-node, then webgpu (an adapter found), then wasm. */
    backend: z.enum(BACKEND_CHOICES).default('auto'),
    /** `auto`: search `search.models` × `search.learning_rates` within `time_budget_s`; `off`: one run with `model`, `lr`. */
    select: z.enum(['auto', 'off']).default('auto'),
    /** Wall-clock budget of the whole automatic search, seconds (each candidate gets an equal share). */
    time_budget_s: z.number().positive().default(600),
    search: z
      .strictObject({
        models: z.array(modelSpecSchema).min(1).default([{ preset: 'draft-nano' }, { preset: 'draft-tiny' }]),
        learning_rates: z.array(z.number().positive()).min(1).default([1e-3, 3e-3]),
        /** Draft tokens per verification step assumed by the expected speed-up. */
        draft_tokens: z.number().int().min(1).max(8).default(4),
        /**
         * One draft forward pass / one target forward pass, for the expected speed-up. Default: the
         * ratio of weights read per token (layers + output head) when `target_model` is given, else 0.05.
         */
        cost_ratio: z.number().positive().optional(),
      })
      .prefault({}),
    /** The draft's size when `select: off`. */
    model: modelSpecSchema.prefault({}),
    /**
     * Initialisation: `random`; `target` (the target's token embeddings, projected when widths
     * differ; needs `target_model`); `draft` (an earlier draft checkpoint, `init_from`); `auto` =
     * `draft` when `init_from` is set, else `target` when `target_model` is set, else `random`.
     */
    init: z.enum(INIT_CHOICES).default('auto'),
    /** An earlier draft checkpoint folder for `init: draft` (incremental retraining). */
    init_from: z.string().min(1).optional(),
    /** The target model (llama2.c, GGUF or HF folder): embeddings for `init: target`, tokenizer for the checkpoint. */
    target_model: z.string().min(1).optional(),
    /** The target's tokenizer file (GGUF or llama2.c tokenizer.bin) when target_model does not embed one; stored with the draft. */
    tokenizer: z.string().min(1).optional(),
    /** Draft output vocabulary: the N most frequent target tokens of the training targets (0 = the full vocabulary). */
    draft_vocab_size: z.number().int().min(0).default(0),
    /** Tokens per packed training sequence. */
    seq_len: z.number().int().min(2).default(256),
    /** Sequences per micro-batch. */
    batch_size: z.number().int().positive().default(8),
    /** Micro-batches per optimiser step. */
    grad_accum: z.number().int().positive().default(1),
    /** Optimiser steps (an upper bound in automatic selection, where time ends a candidate first). */
    max_steps: z.number().int().positive().default(2000),
    /** Peak learning rate (`select: off`). */
    lr: z.number().positive().default(3e-3),
    /** Cosine decay ends at lr × min_lr_ratio. */
    min_lr_ratio: z.number().min(0).max(1).default(0.1),
    /** Linear warm-up steps. */
    warmup_steps: z.number().int().min(0).default(50),
    /** AdamW decoupled weight decay (matrices only, not norm gains). */
    weight_decay: z.number().min(0).default(0.01),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.95),
    adam_eps: z.number().positive().default(1e-8),
    /** Clip the global gradient norm to this (0 = off). */
    grad_clip: z.number().min(0).default(1),
    /** Loss weights: cross-entropy on the target's tokens, forward KL to its top-k, total variation. */
    loss: z
      .strictObject({
        ce: z.number().min(0).default(1),
        kl: z.number().min(0).default(1),
        tv: z.number().min(0).default(0),
      })
      .prefault({}),
    /** Held-out evaluation (greedy hit rate) every N optimiser steps. */
    eval_every: z.number().int().positive().default(100),
    /** Held-out rows per evaluation (0 = all). */
    eval_rows: z.number().int().min(0).default(0),
    /** Stop after this many evaluations without a better hit rate (0 = never). */
    patience: z.number().int().min(0).default(5),
    /** Resume state written every N optimiser steps (and at every evaluation). */
    checkpoint_every: z.number().int().positive().default(100),
    /** Rows held in the streaming shuffle buffer (memory is bounded by it, not by the dataset). */
    shuffle_rows: z.number().int().min(1).default(256),
    seed: z.number().int().min(0).default(0),
    /**
     * Largest batch_size × seq_len × vocabulary (logit elements per micro-batch): wasm memory is
     * capped at 4 GiB, and the loss holds several tensors of this size.
     */
    max_logit_elements: z.number().int().positive().default(48 * 1024 * 1024),
  })
  .prefault({});

export type TrainConfig = z.infer<typeof trainSchema>;
export type ModelSpec = z.infer<typeof modelSpecSchema>;
