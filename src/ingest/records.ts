/**
 * The five input formats, normalised to one shape: a conversation (OpenAI-style messages) and how
 * to expand it into samples. Each parser either returns a conversation or throws a Rejection
 * naming what is wrong with the record; it never guesses a missing field.
 */
import { hash } from 'node:crypto';

export type RecordFormat = 'openai-chat' | 'openai-log' | 'openai-batch' | 'sharegpt' | 'prompt-completion' | 'prompts';
/** Batch API input lines (`{"custom_id","body"}`) are not samples: they are joined to batch output lines. */
export type DetectedFormat = RecordFormat | 'openai-batch-input';

export type RejectCode =
  | 'malformed-json'
  | 'invalid-utf8'
  | 'oversized-line'
  | 'unknown-shape'
  | 'wrong-shape'
  | 'missing-field'
  | 'empty-field'
  | 'bad-role'
  | 'unsupported-content'
  | 'batch-error'
  | 'batch-unmatched';

/** Why a record was rejected; `code` is stable, `message` names the field at fault. */
export class Rejection extends Error {
  constructor(
    readonly code: RejectCode,
    message: string,
  ) {
    super(message);
  }
}

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface ChatMessage {
  role: Role;
  content: string | null;
  name: string | null;
  /** JSON text of the OpenAI `tool_calls` array. */
  tool_calls: string | null;
  tool_call_id: string | null;
}

/**
 * A normalised record. `expand: 'turns'` makes one sample per assistant message (chat formats);
 * `'last'` makes one sample of the final message only (logs: earlier assistant messages in a
 * request are history that was logged as its own response when it was made).
 */
export interface Conversation {
  conversationId: string | null;
  messages: ChatMessage[];
  tools: string | null;
  model: string | null;
  createdAtMs: number | null;
  expand: 'turns' | 'last';
  metadata: Record<string, unknown>;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The format a parsed record looks like, or undefined. */
export function detectFormat(value: unknown): DetectedFormat | undefined {
  if (!isObject(value)) return typeof value === 'string' ? 'prompts' : undefined;
  if ('custom_id' in value && 'response' in value) return 'openai-batch';
  if ('custom_id' in value && 'body' in value) return 'openai-batch-input';
  if ('request' in value && 'response' in value) return 'openai-log';
  if ('messages' in value) return 'openai-chat';
  if ('conversations' in value) return 'sharegpt';
  if (('prompt' in value && 'completion' in value) || ('instruction' in value && 'output' in value))
    return 'prompt-completion';
  if ('prompt' in value) return 'prompts';
  return undefined;
}

/** A function that resolves a Batch API `custom_id` to its request body (or undefined). */
export type BatchLookup = (customId: string) => JsonObject | undefined;

/** Parse one record of a known format. */
export function parseRecord(format: RecordFormat, value: unknown, lookupBatchInput: BatchLookup): Conversation {
  switch (format) {
    case 'openai-chat':
      return parseChat(value);
    case 'openai-log':
      return parseLog(value);
    case 'openai-batch':
      return parseBatchOutput(value, lookupBatchInput);
    case 'sharegpt':
      return parseShareGpt(value);
    case 'prompt-completion':
      return parsePromptCompletion(value);
    case 'prompts':
      return parsePrompt(value);
  }
}

/** A prompts-only text file: each line is a prompt, verbatim. */
export function promptFromText(text: string): Conversation {
  if (text.trim() === '') throw new Rejection('empty-field', 'empty prompt');
  return conversation(null, [message('user', text)], { format: 'prompts' });
}

function parseChat(value: unknown): Conversation {
  const record = expectObject(value, 'openai-chat', 'messages');
  const messages = parseMessages(record.messages, 'messages');
  return {
    conversationId: explicitId(record),
    messages,
    tools: parseTools(record.tools, 'tools'),
    model: optionalString(record.model),
    createdAtMs: parseTime(record.created_at ?? record.created),
    expand: 'turns',
    metadata: { format: 'openai-chat', ...pickMetadata(record) },
  };
}

function parseLog(value: unknown): Conversation {
  const record = expectObject(value, 'openai-log', 'request');
  const request = expectObject(record.request, 'openai-log', 'request', 'request');
  const response = expectObject(record.response, 'openai-log', 'choices', 'response');
  return fromRequestResponse(request, response, 'request', 'response', {
    format: 'openai-log',
    conversationId: explicitId(record, false) ?? explicitId(request, false),
    extras: pickMetadata(record),
  });
}

function parseBatchOutput(value: unknown, lookup: BatchLookup): Conversation {
  const record = expectObject(value, 'openai-batch', 'custom_id');
  const customId = requireString(record.custom_id, 'custom_id');
  if (isObject(record.error))
    throw new Rejection('batch-error', `batch request failed: ${JSON.stringify(record.error).slice(0, 200)}`);
  const response = expectObject(record.response, 'openai-batch', 'body', 'response');
  const status = response.status_code;
  if (typeof status === 'number' && status !== 200)
    throw new Rejection('batch-error', `batch response status_code ${status}`);
  const body = expectObject(response.body, 'openai-batch', 'choices', 'response.body');
  const request = lookup(customId);
  if (!request)
    throw new Rejection('batch-unmatched', `no batch input line with custom_id ${JSON.stringify(customId)}`);
  return fromRequestResponse(request, body, 'batch input body', 'response.body', {
    format: 'openai-batch',
    conversationId: explicitId(request, false),
    extras: { custom_id: customId },
  });
}

function fromRequestResponse(
  request: JsonObject,
  response: JsonObject,
  requestPath: string,
  responsePath: string,
  how: { format: RecordFormat; conversationId: string | null; extras: Record<string, unknown> },
): Conversation {
  const context = parseMessages(request.messages, `${requestPath}.messages`);
  const choices = response.choices;
  if (!Array.isArray(choices) || choices.length === 0) {
    throw new Rejection('missing-field', `${responsePath}.choices: missing or empty`);
  }
  const choice = choices[0];
  if (!isObject(choice)) throw new Rejection('wrong-shape', `${responsePath}.choices[0]: not an object`);
  const reply = parseMessage(choice.message, `${responsePath}.choices[0].message`);
  if (reply.role !== 'assistant')
    throw new Rejection('bad-role', `${responsePath}.choices[0].message.role: expected assistant, got ${reply.role}`);
  const metadata: Record<string, unknown> = { format: how.format, ...how.extras };
  if (choice.finish_reason !== undefined) metadata.finish_reason = choice.finish_reason;
  if (response.usage !== undefined) metadata.usage = response.usage;
  if (typeof response.id === 'string') metadata.response_id = response.id;
  return {
    conversationId: how.conversationId,
    messages: [...context, reply],
    tools: parseTools(request.tools, `${requestPath}.tools`),
    model: optionalString(response.model) ?? optionalString(request.model),
    createdAtMs: parseTime(response.created),
    expand: 'last',
    metadata,
  };
}

const SHAREGPT_ROLES: Record<string, Role> = {
  system: 'system',
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  chatgpt: 'assistant',
  tool: 'tool',
  function: 'tool',
  observation: 'tool',
};

function parseShareGpt(value: unknown): Conversation {
  const record = expectObject(value, 'sharegpt', 'conversations');
  const turns = record.conversations;
  if (!Array.isArray(turns) || turns.length === 0)
    throw new Rejection('missing-field', 'conversations: missing or empty');
  const messages = turns.map((turn, i) => {
    const path = `conversations[${i}]`;
    if (!isObject(turn)) throw new Rejection('wrong-shape', `${path}: not an object`);
    const from = requireString(turn.from, `${path}.from`);
    const role = SHAREGPT_ROLES[from];
    if (!role) throw new Rejection('bad-role', `${path}.from: unknown speaker ${JSON.stringify(from)}`);
    const text = requireString(turn.value, `${path}.value`);
    if (text.trim() === '') throw new Rejection('empty-field', `${path}.value: empty`);
    return message(role, text);
  });
  return {
    ...conversation(explicitId(record), messages, { format: 'sharegpt', ...pickMetadata(record) }),
    tools: parseTools(record.tools, 'tools'),
    model: optionalString(record.model),
  };
}

function parsePromptCompletion(value: unknown): Conversation {
  const record = expectObject(value, 'prompt-completion', 'prompt');
  let prompt: string;
  let completion: string;
  const metadata: Record<string, unknown> = { format: 'prompt-completion', ...pickMetadata(record) };
  if ('instruction' in record) {
    const instruction = requireString(record.instruction, 'instruction');
    if (instruction.trim() === '') throw new Rejection('empty-field', 'instruction: empty');
    const input = record.input === undefined || record.input === null ? '' : requireString(record.input, 'input');
    prompt = input.trim() === '' ? instruction : `${instruction}\n\n${input}`;
    completion = requireString(record.output, 'output');
    if (completion.trim() === '') throw new Rejection('empty-field', 'output: empty');
    if (typeof record.dataset === 'string') metadata.dataset = record.dataset;
  } else {
    prompt = requireString(record.prompt, 'prompt');
    if (prompt.trim() === '') throw new Rejection('empty-field', 'prompt: empty');
    completion = requireString(record.completion, 'completion');
    if (completion.trim() === '') throw new Rejection('empty-field', 'completion: empty');
  }
  return {
    ...conversation(explicitId(record), [message('user', prompt), message('assistant', completion)], metadata),
    model: optionalString(record.model) ?? optionalString(record.generator),
  };
}

function parsePrompt(value: unknown): Conversation {
  if (typeof value === 'string') return promptFromText(value);
  const record = expectObject(value, 'prompts', 'prompt');
  const prompt = requireString(record.prompt, 'prompt');
  if (prompt.trim() === '') throw new Rejection('empty-field', 'prompt: empty');
  const completion = record.completion ?? record.output;
  if (typeof completion === 'string' && completion.trim() !== '') {
    throw new Rejection(
      'wrong-shape',
      'record has a completion, but this file was read as prompts only (use --format prompt-completion)',
    );
  }
  const messages = [message('user', prompt)];
  if (typeof record.system === 'string' && record.system.trim() !== '')
    messages.unshift(message('system', record.system));
  return {
    ...conversation(explicitId(record), messages, { format: 'prompts', ...pickMetadata(record) }),
    tools: parseTools(record.tools, 'tools'),
  };
}

// ---- messages ------------------------------------------------------------------------------

const ROLES = new Set<Role>(['system', 'user', 'assistant', 'tool']);

function parseMessages(value: unknown, path: string): ChatMessage[] {
  if (!Array.isArray(value))
    throw new Rejection(
      value === undefined ? 'missing-field' : 'wrong-shape',
      `${path}: ${value === undefined ? 'missing' : 'not an array'}`,
    );
  if (value.length === 0) throw new Rejection('empty-field', `${path}: empty`);
  return value.map((m, i) => parseMessage(m, path, i));
}

/**
 * One message; `path` (with `[index]` when index ≥ 0) names it in rejections. The path is only
 * built for a rejection: building it for every message was a few small strings per message.
 */
function parseMessage(value: unknown, path: string, index = -1): ChatMessage {
  if (!isObject(value))
    throw new Rejection(
      value === undefined ? 'missing-field' : 'wrong-shape',
      `${messagePath(path, index)}: ${value === undefined ? 'missing' : 'not an object'}`,
    );
  const roleText =
    typeof value.role === 'string' ? value.role : requireString(value.role, `${messagePath(path, index)}.role`);
  // `developer` is OpenAI's newer name for the system role; `function` its older name for tool results.
  const role = (roleText === 'developer' ? 'system' : roleText === 'function' ? 'tool' : roleText) as Role;
  if (!ROLES.has(role))
    throw new Rejection('bad-role', `${messagePath(path, index)}.role: unknown role ${JSON.stringify(roleText)}`);
  const content =
    typeof value.content === 'string'
      ? value.content
      : parseContent(value.content, `${messagePath(path, index)}.content`);
  let toolCalls: string | null = null;
  if (value.tool_calls !== undefined && value.tool_calls !== null) {
    if (!Array.isArray(value.tool_calls))
      throw new Rejection('wrong-shape', `${messagePath(path, index)}.tool_calls: not an array`);
    if (value.tool_calls.length > 0) toolCalls = JSON.stringify(value.tool_calls);
  } else if (isObject(value.function_call)) {
    toolCalls = JSON.stringify([{ type: 'function', function: value.function_call }]);
  }
  if ((content === null || !NOT_BLANK.test(content)) && toolCalls === null) {
    throw new Rejection(
      content === null && value.content === undefined ? 'missing-field' : 'empty-field',
      `${messagePath(path, index)}.content: ${content === null ? 'missing' : 'empty'}`,
    );
  }
  return {
    role,
    content,
    name: optionalString(value.name),
    tool_calls: toolCalls,
    tool_call_id: optionalString(value.tool_call_id),
  };
}

const messagePath = (path: string, index: number): string => (index < 0 ? path : `${path}[${index}]`);
/** Matches text that is not all whitespace (`\s` is the set `trim()` removes), without making a trimmed copy. */
const NOT_BLANK = /\S/;

/** Message content: a string, or OpenAI content parts of which only text parts are supported. */
function parseContent(value: unknown, path: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const texts = value.map((part, i) => {
      if (!isObject(part)) throw new Rejection('wrong-shape', `${path}[${i}]: not an object`);
      if (part.type !== 'text' || typeof part.text !== 'string') {
        throw new Rejection(
          'unsupported-content',
          `${path}[${i}]: unsupported content part type ${JSON.stringify(part.type)} (text only)`,
        );
      }
      return part.text;
    });
    return texts.join('');
  }
  throw new Rejection('wrong-shape', `${path}: not a string or an array of parts`);
}

function parseTools(value: unknown, path: string): string | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) throw new Rejection('wrong-shape', `${path}: not an array`);
  return value.length ? JSON.stringify(value) : null;
}

// ---- small helpers -------------------------------------------------------------------------

function message(role: Role, content: string): ChatMessage {
  return { role, content, name: null, tool_calls: null, tool_call_id: null };
}

function conversation(
  conversationId: string | null,
  messages: ChatMessage[],
  metadata: Record<string, unknown>,
): Conversation {
  return { conversationId, messages, tools: null, model: null, createdAtMs: null, expand: 'turns', metadata };
}

function expectObject(value: unknown, format: string, key: string, path?: string): JsonObject {
  if (!isObject(value)) {
    if (path)
      throw new Rejection(
        value === undefined ? 'missing-field' : 'wrong-shape',
        `${path}: ${value === undefined ? 'missing' : 'not an object'}`,
      );
    throw new Rejection('wrong-shape', `not a ${format} record (expected an object with "${key}")`);
  }
  return value;
}

function requireString(value: unknown, path: string): string {
  if (value === undefined || value === null) throw new Rejection('missing-field', `${path}: missing`);
  if (typeof value !== 'string') throw new Rejection('wrong-shape', `${path}: not a string`);
  return value;
}

function optionalString(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/**
 * The record's own conversation id. Logs and batch lines pass `withId: false`: their `id` names one call, not a
 * conversation.
 */
function explicitId(record: JsonObject, withId = true): string | null {
  for (const key of withId ? ['conversation_id', 'id'] : ['conversation_id']) {
    const value = record[key];
    if (typeof value === 'string' && value !== '') return value;
    if (typeof value === 'number') return String(value);
  }
  const metadata = record.metadata;
  if (isObject(metadata) && typeof metadata.conversation_id === 'string') return metadata.conversation_id;
  return null;
}

/** Small source fields worth keeping beside each row (never the content itself). */
function pickMetadata(record: JsonObject): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  if (isObject(record.metadata)) picked.source_metadata = record.metadata;
  return picked;
}

function parseTime(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value))
    return value < 1e11 ? Math.round(value * 1000) : Math.round(value);
  if (typeof value === 'string') {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? null : ms;
  }
  return null;
}

/** A conversation id for traces that carry none: a hash of the opening (system messages and first user message). */
export function openingId(messages: readonly ChatMessage[]): string {
  let opening = '';
  for (const m of messages) {
    opening += `${m.role}\u0000${m.content ?? ''}\u0000`;
    if (m.role === 'user') break;
  }
  return `c-${hash('sha256', opening, 'hex').slice(0, 16)}`;
}
