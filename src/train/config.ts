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
export const INIT_CHOICES = ['auto', 'random', 'target', 'target-layers', 'pretrained', 'draft'] as const;
const PRESET_NAMES = ['draft-nano', 'draft-tiny', 'draft-small', 'draft-base'] as const;

/** A draft size: a preset, optionally with some of its numbers replaced. */
export const modelSpecSchema = z.strictObject({
  preset: z
    .enum(PRESET_NAMES)
    .default('draft-nano')
    .describe(
      '`draft-nano` (d64, 2 layers), `draft-tiny` (d128, 4 layers), `draft-small` (d256, 4 layers, 4 heads over 2 KV ' +
        'heads), `draft-base` (d512, 6 layers): src/model/presets.ts.',
    ),
  dim: z
    .number()
    .int()
    .positive()
    .optional()
    .describe(
      "Model width; a new `dim` re-derives `hidden_dim` by Llama's SwiGLU rule, 32·⌈⌊8·dim/3⌋/32⌉, unless it is given.",
    ),
  hidden_dim: z.number().int().positive().optional().describe('SwiGLU inner width.'),
  n_layers: z.number().int().positive().optional().describe('Transformer blocks.'),
  n_heads: z
    .number()
    .int()
    .positive()
    .optional()
    .describe(
      "Attention (query) heads. With `init: target-layers`: the target's query heads kept (by weight norm, head " +
        "size unchanged); default `n_kv_heads` × the target's query heads per KV head, else all.",
    ),
  n_kv_heads: z
    .number()
    .int()
    .positive()
    .optional()
    .describe(
      "Key/value heads (grouped-query attention). With `init: target-layers`: the target's KV heads kept, whole " +
        'groups by weight norm; each serves `n_heads / n_kv_heads` of the query heads that read it in the target.',
    ),
  tied_embeddings: z.boolean().optional().describe('Share the token embedding with the output head.'),
});

export const trainSchema = z
  .strictObject({
    targets: z
      .string()
      .min(1)
      .optional()
      .describe("Targets directory written by `fireopt distill` (or the command's argument)."),
    out: z.string().min(1).optional().describe('Run folder (or `--out`): `draft/` is the chosen draft checkpoint.'),
    backend: z
      .enum(BACKEND_CHOICES)
      .default('auto')
      .describe(
        'TensorFlow.js backend (`--backend`): `auto` takes tfjs-node-gpu, then tfjs-node, then webgpu (an adapter ' +
          'found), then wasm.',
      ),
    select: z
      .enum(['auto', 'off'])
      .default('auto')
      .describe(
        '`auto`: search `search.models` × `search.learning_rates` within `time_budget_s`; `off`: one run with ' +
          '`model`, `lr`.',
      ),
    time_budget_s: z
      .number()
      .positive()
      .default(600)
      .describe(
        'Wall-clock budget of the whole automatic search, seconds (each ' +
          'candidate gets an equal share; `--time-budget`).',
      ),
    search: z
      .strictObject({
        models: z
          .array(modelSpecSchema)
          .min(1)
          .optional()
          .describe(
            'Candidate draft sizes: a preset, optionally with some of its numbers replaced (with `init: ' +
              'target-layers`, `n_layers`, `hidden_dim`, `n_heads` and `n_kv_heads` of the cut). Default: sized to ' +
              'the target (about 1/40, ' +
              '1/15 and 1/6 of its parameters, each with the best init available) when `target_model` is given, else ' +
              '`draft-nano` and `draft-tiny`. Never a draft of half the target or more.',
          ),
        learning_rates: z
          .array(z.number().positive())
          .min(1)
          .default([1e-3, 3e-3])
          .describe('Candidate peak learning rates.'),
        draft_tokens: z
          .number()
          .int()
          .min(1)
          .max(8)
          .default(4)
          .describe('Draft tokens per verification step assumed by the expected speed-up.'),
        cost_ratio: z
          .number()
          .positive()
          .optional()
          .describe(
            'One draft forward pass / one target forward pass, for the expected speed-up. Default: measured in ' +
              "llama.cpp with eval's `eval.cost` settings when `target_model` is a GGUF (unless `eval.cost.engine: " +
              'given`), else the ratio of weights read per token (layers + output ' +
              'head) when `target_model` is given, ' +
              'else 0.05.',
          ),
      })
      .prefault({})
      .describe('Automatic selection (`select: auto`): the candidates, and how their expected speed-up is priced.'),
    model: modelSpecSchema.prefault({}).describe("The draft's size when `select: off`."),
    init: z
      .enum(INIT_CHOICES)
      .default('auto')
      .describe(
        "Initialisation: `random`; `target` (the target's token embeddings, projected when widths differ; needs " +
          "`target_model`); `target-layers` (the target's first `model.n_layers` blocks, SwiGLU narrowed to " +
          '`model.hidden_dim` channels and attention to `model.n_heads` / `model.n_kv_heads` heads by weight norm, ' +
          'its final norm and head; needs `target_model`); `pretrained` ' +
          "(a small pretrained Llama model with exactly the target's tokenizer, `init_from`); `draft` (an earlier " +
          'draft checkpoint, `init_from`); `auto` = `draft` when `init_from` is a draft checkpoint, `pretrained` ' +
          'when it is another model, else with ' +
          '`target_model` the best per searched candidate (`target-layers` where it fits the size, else `target`; ' +
          '`target` with `select: off`), else `random`.',
      ),
    init_from: z
      .string()
      .min(1)
      .optional()
      .describe(
        'An earlier draft checkpoint folder for `init: draft` (incremental retraining), or a small pretrained model ' +
          "(llama2.c, GGUF or HF folder) sharing the target's tokenizer for `init: pretrained`.",
      ),
    target_model: z
      .string()
      .min(1)
      .optional()
      .describe(
        'The target model (llama2.c, GGUF or HF folder): embeddings for `init: target`, tokenizer for the checkpoint.',
      ),
    tokenizer: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The target's tokenizer file (GGUF or llama2.c tokenizer.bin) when target_model does not embed one; stored " +
          'with the draft.',
      ),
    draft_vocab_size: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        'Draft output vocabulary: the N most frequent target tokens of the training targets (0 = the full vocabulary).',
      ),
    seq_len: z.number().int().min(2).default(256).describe('Tokens per packed training sequence.'),
    batch_size: z.number().int().positive().default(8).describe('Sequences per micro-batch.'),
    grad_accum: z.number().int().positive().default(1).describe('Micro-batches per optimiser step.'),
    max_steps: z
      .number()
      .int()
      .positive()
      .default(2000)
      .describe(
        'Optimiser steps (an upper bound in automatic selection, where time ends a candidate first; `--max-steps`).',
      ),
    lr: z.number().positive().default(3e-3).describe('Peak learning rate (`select: off`).'),
    min_lr_ratio: z.number().min(0).max(1).default(0.1).describe('Cosine decay ends at lr × min_lr_ratio.'),
    warmup_steps: z.number().int().min(0).default(50).describe('Linear warm-up steps.'),
    weight_decay: z
      .number()
      .min(0)
      .default(0.01)
      .describe('AdamW decoupled weight decay (matrices only, not norm gains).'),
    beta1: z.number().min(0).lt(1).default(0.9).describe('AdamW decay of the first moment.'),
    beta2: z.number().min(0).lt(1).default(0.95).describe('AdamW decay of the second moment.'),
    adam_eps: z.number().positive().default(1e-8).describe('AdamW epsilon.'),
    grad_clip: z.number().min(0).default(1).describe('Clip the global gradient norm to this (0 = off).'),
    loss: z
      .strictObject({
        ce: z.number().min(0).default(1).describe("Weight of cross-entropy on the target's tokens."),
        kl: z
          .number()
          .min(0)
          .default(1)
          .describe(
            "Weight of forward KL to the target's top-k (renormalised), where the targets carry log-probabilities.",
          ),
        tv: z.number().min(0).default(0).describe('Weight of total variation ½Σ|p − q|.'),
      })
      .prefault({})
      .describe("Loss weights: cross-entropy on the target's tokens, forward KL to its top-k, total variation."),
    eval_every: z
      .number()
      .int()
      .positive()
      .default(100)
      .describe('Held-out evaluation (greedy hit rate) every N optimiser steps.'),
    eval_rows: z.number().int().min(0).default(0).describe('Held-out rows per evaluation (0 = all).'),
    patience: z
      .number()
      .int()
      .min(0)
      .default(5)
      .describe('Stop after this many evaluations without a better hit rate (0 = never).'),
    checkpoint_every: z
      .number()
      .int()
      .positive()
      .default(100)
      .describe('Resume state written every N optimiser steps (and at every evaluation).'),
    shuffle_rows: z
      .number()
      .int()
      .min(1)
      .default(256)
      .describe('Rows held in the streaming shuffle buffer (memory is bounded by it, not by the dataset).'),
    seed: z.number().int().min(0).default(0).describe('Seed of initialisation and data order.'),
    max_logit_elements: z
      .number()
      .int()
      .positive()
      .default(48 * 1024 * 1024)
      .describe(
        'Largest batch_size × seq_len × vocabulary (logit elements per micro-batch): wasm memory is capped at 4 GiB, ' +
          'and the loss holds several tensors of this size.',
      ),
  })
  .prefault({});

export type TrainConfig = z.infer<typeof trainSchema>;
export type ModelSpec = z.infer<typeof modelSpecSchema>;
