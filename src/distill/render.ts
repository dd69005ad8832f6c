/**
 * Turn a trace row into target token ids: render the messages with the target's chat template
 * (Hugging Face's Jinja implementation, as transformers' `apply_chat_template` does), tokenize, and
 * split prompt from completion. The loss mask is built here from the split point — it is stored
 * explicitly and never inferred later from template markers.
 */
import { Template } from '@huggingface/jinja';
import { InputError, describeError } from '../errors.js';
import type { TraceMessage, TraceRow } from '../formats/traces-schema.js';
import type { ChatMessage } from '../targets/engine.js';
import { endOfGenerationIds } from '../tokenizer/end-of-generation.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export interface RenderedPrompt {
  text: string;
  tokenIds: number[];
  /** The plain messages, for engines that talk to a chat API. */
  messages: ChatMessage[];
}

export interface RenderedExample {
  promptTokenIds: number[];
  completionTokenIds: number[];
  lossMask: Uint8Array;
}

interface TemplateMessage {
  role: string;
  content: string | null;
  name?: string;
  tool_calls?: unknown;
  tool_call_id?: string;
}

/** Renders prompts (and prompt + completion) for one target tokenizer and template. */
export class PromptRenderer {
  private readonly template?: Template;
  private endIds?: Set<number>;

  constructor(
    private readonly tokenizer: Tokenizer,
    /** Jinja chat template text; undefined = plain text (messages joined by blank lines). */
    readonly chatTemplate?: string,
  ) {
    if (chatTemplate !== undefined) {
      try {
        this.template = new Template(chatTemplate);
      } catch (error) {
        throw new InputError(
          `the chat template does not parse: ${describeError(error)}`,
          'set distill.chat_template to a valid Jinja file, or `none`',
        );
      }
    }
  }

  /** The prompt of a row: its context, ready for the assistant's turn. */
  renderPrompt(row: TraceRow): RenderedPrompt {
    const messages = row.messages.map(templateMessage);
    const text = this.renderText(messages, row, true);
    return {
      text,
      tokenIds: this.encode(text),
      messages: row.messages.map((m) => ({ role: m.role as ChatMessage['role'], content: m.content ?? '' })),
    };
  }

  /**
   * The row's context and its recorded completion as one token sequence, split where the prompt
   * ends. Tokenizing the whole text (not the parts) keeps the ids the target would see; when a
   * token straddles the boundary the split moves back to the longest common prefix.
   */
  renderExample(row: TraceRow): RenderedExample {
    if (row.completion === null && row.completion_tool_calls === null) {
      throw new InputError(`row ${row.id} has no completion to tokenize`);
    }
    const context = row.messages.map(templateMessage);
    const promptText = this.renderText(context, row, true);
    const promptIds = this.encode(promptText);
    let fullIds: number[];
    let trailingEos = false;
    if (this.template) {
      const assistant: TemplateMessage = { role: 'assistant', content: row.completion ?? '' };
      if (row.completion_tool_calls !== null)
        assistant.tool_calls = parseJson(row.completion_tool_calls, row, 'completion_tool_calls');
      fullIds = this.encode(this.renderText([...context, assistant], row, false));
    } else {
      fullIds = this.encode(promptText + (row.completion ?? ''));
      // A base model ends its text with EOS: the draft should learn when the target stops.
      trailingEos = this.tokenizer.eosId !== undefined;
    }
    let split = 0;
    while (split < promptIds.length && split < fullIds.length && promptIds[split] === fullIds[split]) split++;
    let completionTokenIds = fullIds.slice(split);
    if (this.template) {
      // The target stops at its end-of-turn token: what a template writes after it (a newline, the next
      // turn's header — Llama-3's first template always appends one) is never generated, so never trained on.
      this.endIds ??= endOfGenerationIds({ tokens: this.tokenizer.pieces(), eosId: this.tokenizer.eosId });
      const end = completionTokenIds.findIndex((id) => this.endIds?.has(id));
      if (end >= 0) completionTokenIds = completionTokenIds.slice(0, end + 1);
    }
    if (trailingEos) completionTokenIds.push(this.tokenizer.eosId as number);
    if (completionTokenIds.length === 0) throw new InputError(`row ${row.id}: the completion renders to no tokens`);
    return {
      promptTokenIds: fullIds.slice(0, split),
      completionTokenIds,
      lossMask: new Uint8Array(completionTokenIds.length).fill(1),
    };
  }

  private renderText(messages: TemplateMessage[], row: TraceRow, addGenerationPrompt: boolean): string {
    // Plain text (base models): the context as-is, and the completion continues it directly.
    if (!this.template) return messages.map((m) => m.content ?? '').join('\n\n');
    const bos = this.tokenizer.bosId === undefined ? '' : this.tokenizer.tokenPiece(this.tokenizer.bosId);
    const eos = this.tokenizer.eosId === undefined ? '' : this.tokenizer.tokenPiece(this.tokenizer.eosId);
    try {
      return this.template.render({
        messages,
        tools: row.tools === null ? undefined : parseJson(row.tools, row, 'tools'),
        add_generation_prompt: addGenerationPrompt,
        bos_token: bos,
        eos_token: eos,
      });
    } catch (error) {
      throw new InputError(
        `row ${row.id} (${row.source_file}:${row.source_line}): the chat template failed: ${describeError(error)}`,
      );
    }
  }

  /**
   * Tokenize rendered text. With a template, special-token text in it (`<|im_start|>`) is parsed as
   * special tokens and BOS is not added again (templates write it), as apply_chat_template does;
   * plain text gets the vocabulary's own BOS.
   */
  private encode(text: string): number[] {
    return this.template
      ? this.tokenizer.encode(text, { addBos: false, parseSpecial: true })
      : this.tokenizer.encode(text);
  }
}

function templateMessage(message: TraceMessage): TemplateMessage {
  // A tool-call turn's null content is the empty string, as vLLM hands it to string-content
  // templates: Phi-3's template concatenates content and fails on null; templates that test it
  // (`if message.content`, `is string`) treat '' as they treat null.
  const out: TemplateMessage = { role: message.role, content: message.content ?? '' };
  if (message.name !== null) out.name = message.name;
  if (message.tool_call_id !== null) out.tool_call_id = message.tool_call_id;
  if (message.tool_calls !== null) {
    try {
      out.tool_calls = JSON.parse(message.tool_calls) as unknown;
    } catch {
      out.tool_calls = message.tool_calls;
    }
  }
  return out;
}

function parseJson(text: string, row: TraceRow, field: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InputError(
      `row ${row.id} (${row.source_file}:${row.source_line}): field ${field} ` +
        `is not valid JSON (${describeError(error)})`,
    );
  }
}
