/**
 * Chat prompts for `fireopt serve`: messages rendered with the model's own Jinja chat template
 * (GGUF `tokenizer.chat_template`, rendered by @huggingface/jinja as Hugging Face does), or — for
 * a model that ships none, such as a base model — a plain documented fallback:
 *
 *   <BOS>System: {content}\nUser: {content}\nAssistant: {content}\n…Assistant:
 *
 * (one `Role: content` line per message; generation continues after the final `Assistant:`).
 */
import { Template } from '@huggingface/jinja';
import { InputError, describeError } from '../errors.js';
import type { ChatMessage } from '../targets/engine.js';

export interface ChatRenderer {
  /** `template` (the GGUF's) or `fallback`. */
  readonly kind: 'template' | 'fallback';
  /** Prompt text; special-token text in it (e.g. `<|im_start|>`) is tokenized as those tokens. */
  render(messages: readonly ChatMessage[]): string;
}

export interface ChatTokens {
  bosText: string;
  eosText: string;
}

/** A renderer for the model's template, or the fallback when `template` is undefined. */
export function chatRenderer(template: string | undefined, tokens: ChatTokens): ChatRenderer {
  if (template === undefined) {
    return {
      kind: 'fallback',
      render: (messages) =>
        `${tokens.bosText}${messages.map((m) => `${capitalise(m.role)}: ${m.content}\n`).join('')}Assistant:`,
    };
  }
  let compiled: Template;
  try {
    compiled = new Template(template);
  } catch (error) {
    throw new InputError(`the model's chat template does not parse (${describeError(error)})`);
  }
  return {
    kind: 'template',
    render: (messages) => {
      try {
        return compiled.render({
          messages: messages.map((m) => ({ role: m.role, content: m.content })),
          add_generation_prompt: true,
          bos_token: tokens.bosText,
          eos_token: tokens.eosText,
        });
      } catch (error) {
        throw new InputError(`the model's chat template failed on these messages (${describeError(error)})`);
      }
    },
  };
}

function capitalise(role: string): string {
  return role.charAt(0).toUpperCase() + role.slice(1);
}
