/**
 * `fireopt convert <checkpoint> --to gguf|hf --out <path>`: convert a llama2.c, Hugging Face
 * (safetensors) or GGUF checkpoint into a GGUF file llama.cpp loads, or a Hugging Face folder.
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { ContextGetter } from '../context.js';
import { claimOutputs } from '../../util/output.js';
// No interrupt handler: conversion is synchronous, so a handler would only run after it ends; Node's
// default ends the process at once, and the next write to the same path removes the temp file.
import { forceOption } from '../safety.js';

interface ConvertOptions {
  to: 'gguf' | 'hf';
  out: string;
  dtype: 'f32' | 'f16' | 'bf16';
  tokenizer?: string;
  name?: string;
  force?: boolean;
}

const SAFETENSORS_DTYPE = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const;

export function register(program: Command, context: ContextGetter): void {
  program
    .command('convert')
    .description('convert a llama2.c, Hugging Face safetensors or GGUF checkpoint to GGUF or Hugging Face format')
    .argument('<checkpoint>', 'llama2.c .bin file, Hugging Face folder (config.json + model.safetensors) or .gguf file')
    .addOption(new Option('--to <format>', 'output format').choices(['gguf', 'hf']).makeOptionMandatory())
    .requiredOption('--out <path>', 'output: a .gguf file, or a folder for --to hf')
    .addOption(
      new Option('--dtype <dtype>', 'weight precision (16-bit GGUFs keep norm weights in f32)')
        .choices(['f32', 'f16', 'bf16'])
        .default('f32'),
    )
    .option('--tokenizer <file>', 'tokenizer to embed: llama2.c tokenizer.bin or a GGUF with the same vocabulary')
    .option('--name <name>', 'model name stored in the GGUF (general.name)')
    .addOption(forceOption())
    .action(async (checkpoint: string, options: ConvertOptions) => {
      const { io, globals } = context();
      claimOutputs({
        command: 'convert',
        outputs: [{ path: options.out, kind: options.to === 'gguf' ? 'gguf-file' : 'hf-folder', option: '--out' }],
        inputs: [checkpoint, options.tokenizer],
        force: options.force,
      });
      const { loadModel } = await import('../../formats/load-model.js');
      const model = loadModel(checkpoint, { tokenizer: options.tokenizer });
      if (options.to === 'gguf') {
        if (!model.vocabulary) {
          throw new UsageError(
            `${checkpoint}: a GGUF file must embed its tokenizer, and this ${model.kind} checkpoint comes without one`,
            'HINT: pass --tokenizer <tokenizer.bin or .gguf>',
          );
        }
        const { writeLlamaGguf } = await import('../../formats/gguf-llama.js');
        writeLlamaGguf(options.out, model.weights, model.vocabulary, { dtype: options.dtype, name: options.name });
      } else {
        const { writeHfLlama } = await import('../../formats/safetensors.js');
        writeHfLlama(options.out, model.weights, {
          dtype: SAFETENSORS_DTYPE[options.dtype],
          vocabulary: model.vocabulary,
        });
      }
      const { config } = model.weights;
      const parameters = [
        model.weights.tokenEmbedding,
        model.weights.finalNorm,
        model.weights.output,
        ...model.weights.layers.flatMap((l) => Object.values(l)),
      ].reduce((sum, tensor) => sum + (tensor ? tensor.data.length : 0), 0);
      const summary = {
        input: checkpoint,
        inputKind: model.kind,
        output: options.out,
        format: options.to,
        dtype: options.dtype,
        parameters,
        config,
        tokenizer: model.vocabularySource ?? null,
      };
      if (globals.json) io.stdout(`${JSON.stringify(summary)}\n`);
      else {
        io.stdout(
          `wrote ${options.out} (${options.to}, ${options.dtype}) from ${model.kind} checkpoint ${checkpoint}: ` +
            `${parameters.toLocaleString('en-US')} parameters, ${config.nLayers} ` +
            `layers, dim ${config.dim}, vocabulary ${config.vocabSize}` +
            `${model.vocabularySource ? `, tokenizer from ${model.vocabularySource}` : ', no tokenizer'}\n`,
        );
      }
    });
}
