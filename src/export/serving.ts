/** The commands that serve the exported draft beside its target, one per engine, with real paths. */
import type { ServingEngine } from './config.js';
import type { TargetDescription } from './target.js';

export interface ServingCommand {
  engine: ServingEngine;
  title: string;
  command: string;
}

export interface ServingInput {
  engines: readonly ServingEngine[];
  /** Absolute paths of the exported HF folder and GGUF file. */
  hfDir?: string;
  gguf?: string;
  target?: TargetDescription;
  servingContext: number;
  /** Draft tokens per target step. */
  draftTokens?: number;
}

/** POSIX shell quoting: bare when safe, else single quotes. */
export function shellQuote(text: string): string {
  return /^[A-Za-z0-9_/.:=@%+,-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A Python string literal (JSON string syntax is valid Python for these characters). */
function pythonString(text: string): string {
  return JSON.stringify(text);
}

export function servingCommands(input: ServingInput): ServingCommand[] {
  const k = input.draftTokens ?? 4;
  const context = input.servingContext;
  const hfTarget = input.target?.kind === 'hf' ? input.target.path : '<target Hugging Face model>';
  const ggufTarget = input.target?.kind === 'gguf' ? input.target.path : '<target.gguf>';
  const commands: ServingCommand[] = [];
  for (const engine of input.engines) {
    if (engine === 'vllm' && input.hfDir) {
      const speculative = JSON.stringify({ method: 'draft_model', model: input.hfDir, num_speculative_tokens: k });
      commands.push({
        engine,
        title: 'vLLM',
        command:
          `vllm serve ${shellQuote(hfTarget)} --max-model-len ${context} ` +
          `--speculative-config ${shellQuote(speculative)}`,
      });
    } else if (engine === 'sglang' && input.hfDir) {
      commands.push({
        engine,
        title: 'SGLang',
        command:
          `python -m sglang.launch_server --model-path ${shellQuote(hfTarget)} --context-length ${context} ` +
          `--speculative-algorithm STANDALONE --speculative-draft-model-path ${shellQuote(input.hfDir)} ` +
          `--speculative-num-steps ${k} --speculative-eagle-topk 1 --speculative-num-draft-tokens ${k + 1}`,
      });
    } else if (engine === 'llama-cpp' && input.gguf) {
      commands.push({
        engine,
        title: 'llama.cpp',
        command:
          `llama-server -m ${shellQuote(ggufTarget)} -md ${shellQuote(input.gguf)} ` +
          `-c ${context} --draft-max ${k * 2} --draft-min 1 --temp 0`,
      });
    } else if (engine === 'transformers' && input.hfDir) {
      commands.push({
        engine,
        title: 'transformers (assisted generation)',
        command: [
          `python - <<'PY'`,
          `from transformers import AutoModelForCausalLM, AutoTokenizer`,
          `tokenizer = AutoTokenizer.from_pretrained(${pythonString(hfTarget)})`,
          `target = AutoModelForCausalLM.from_pretrained(${pythonString(hfTarget)}, ` +
            `torch_dtype="auto", device_map="auto")`,
          `draft = AutoModelForCausalLM.from_pretrained(${pythonString(input.hfDir)}, ` +
            `torch_dtype="auto", device_map="auto")`,
          `inputs = tokenizer("Once upon a time", return_tensors="pt").to(target.device)`,
          `output = target.generate(**inputs, assistant_model=draft, ` +
            `do_sample=False, max_new_tokens=128, num_assistant_tokens=${k})`,
          `print(tokenizer.decode(output[0], skip_special_tokens=True))`,
          `PY`,
        ].join('\n'),
      });
    }
  }
  return commands;
}

/** SERVING.md: every command under its engine's heading. */
export function servingMarkdown(commands: ServingCommand[], notes: string[]): string {
  const lines = ['# Serving the exported draft', ''];
  for (const { title, command } of commands) lines.push(`## ${title}`, '', '```sh', command, '```', '');
  if (notes.length) lines.push('## Notes', '', ...notes.map((note) => `- ${note}`), '');
  return lines.join('\n');
}
