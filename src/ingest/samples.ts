/**
 * Conversation → samples. Each assistant turn becomes one sample whose context is every earlier
 * message; a conversation that ends without an assistant reply (or has none) also yields one
 * prompt sample with a null completion, for distill to complete.
 */
import { hash } from 'node:crypto';
import type { TraceRow, TraceSplit } from '../formats/traces-schema.js';
import { openingId, type ChatMessage, type Conversation } from './records.js';
import { redactText, type RedactionCounts } from './redact.js';

/** Which split a conversation belongs to: a salted sha256 of its id, so it never changes. */
export function splitOf(conversationId: string, salt: string, heldoutFraction: number): TraceSplit {
  if (heldoutFraction <= 0) return 'train';
  const digest = hash('sha256', `${salt}\u0000${conversationId}`, 'buffer');
  const unit = digest.readUInt32BE(0) / 2 ** 32; // uniform in [0, 1)
  return unit < heldoutFraction ? 'heldout' : 'train';
}

/** Mask sensitive text in every message (content and tool-call arguments), in place. */
export function redactConversation(conversation: Conversation, counts: RedactionCounts): void {
  for (const message of conversation.messages) {
    if (message.content !== null) message.content = redactText(message.content, counts);
    if (message.tool_calls !== null) message.tool_calls = redactText(message.tool_calls, counts);
  }
}

/** A sample before it is written: its row, and the digest that identifies it for dedup. */
export interface Sample {
  row: TraceRow;
  digest: Buffer;
}

export interface SampleSource {
  file: string;
  line: number;
  salt: string;
  heldout: number;
}

/**
 * Expand a conversation into samples. The sample hash covers tools, context and completion, as one
 * string hashed in one call: node's one-shot `crypto.hash` is several times cheaper than a Hash
 * object per sample for the short texts most traces are.
 */
export function expandConversation(conversation: Conversation, source: SampleSource): Sample[] {
  const { messages } = conversation;
  const conversationId = conversation.conversationId ?? openingId(messages);
  const split = splitOf(conversationId, source.salt, source.heldout);
  const metadata = JSON.stringify(conversation.metadata);
  let hashedContext = `${conversation.tools ?? ''}\u0001`;
  const samples: Sample[] = [];
  let turnIndex = 0;
  const makeSample = (contextEnd: number, reply: ChatMessage | null): Sample => {
    const digest = hash('sha256', reply ? `${hashedContext}\u0002${encodeMessage(reply)}` : `${hashedContext}\u0002`, 'buffer');
    return {
      digest,
      row: {
        id: digest.toString('hex', 0, 16),
        conversation_id: conversationId,
        turn_index: turnIndex,
        messages: messages.slice(0, contextEnd),
        completion: reply ? reply.content ?? '' : null,
        completion_tool_calls: reply ? reply.tool_calls : null,
        tools: conversation.tools,
        model: conversation.model,
        created_at: conversation.createdAtMs,
        source_file: source.file,
        source_line: source.line,
        split,
        metadata,
      },
    };
  };
  const firstSampled = conversation.expand === 'last' ? messages.length - 1 : 0;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    if (message.role === 'assistant' && i >= firstSampled && i > 0) samples.push(makeSample(i, message));
    if (message.role === 'assistant') turnIndex++;
    hashedContext += encodeMessage(message);
  }
  const last = messages[messages.length - 1];
  if (last.role !== 'assistant') samples.push(makeSample(messages.length, null));
  return samples;
}

function encodeMessage(message: ChatMessage): string {
  return `${message.role}\u0000${message.content ?? ''}\u0000${message.name ?? ''}\u0000${message.tool_calls ?? ''}\u0000${message.tool_call_id ?? ''}\u0003`;
}
