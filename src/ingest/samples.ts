/**
 * Conversation → samples. Each assistant turn becomes one sample whose context is every earlier
 * message; a conversation that ends without an assistant reply (or has none) also yields one
 * prompt sample with a null completion, for distill to complete.
 */
import { hash } from 'node:crypto';
import type { TraceSplit } from '../formats/traces-schema.js';
import type { TracesBatchBuilder, Utf8Column } from './columns.js';
import { openingId, type ChatMessage, type Conversation } from './records.js';
import { redactText, type RedactionCounts } from './redact.js';

/** Which split a conversation belongs to: a salted sha256 of its id, so it never changes. */
export function splitOf(conversationId: string, salt: string, heldoutFraction: number): TraceSplit {
  if (heldoutFraction <= 0) return 'train';
  // 'binary' (latin1, one char per byte): a short heap string is cheaper to make than a Buffer.
  const digest = hash('sha256', `${salt}\u0000${conversationId}`, 'binary');
  const first32 = ((digest.charCodeAt(0) << 24) | (digest.charCodeAt(1) << 16) | (digest.charCodeAt(2) << 8) | digest.charCodeAt(3)) >>> 0;
  const unit = first32 / 2 ** 32; // uniform in [0, 1)
  return unit < heldoutFraction ? 'heldout' : 'train';
}

/** Mask sensitive text in every message (content and tool-call arguments), in place. */
export function redactConversation(conversation: Conversation, counts: RedactionCounts): void {
  for (const message of conversation.messages) {
    if (message.content !== null) message.content = redactText(message.content, counts);
    if (message.tool_calls !== null) message.tool_calls = redactText(message.tool_calls, counts);
  }
}

/** Where encoded samples go: the builder of each split, and each sample's digest in input order. */
export interface SampleSink {
  train: TracesBatchBuilder;
  heldout: TracesBatchBuilder;
  /**
   * Called once per sample, after its row is written; `digest` is its sha256 as a latin1 string
   * (one char per byte: a small heap string is far cheaper to make than a Buffer per sample).
   */
  sample(digest: string, split: TraceSplit): void;
}

export interface SampleSource {
  file: string;
  line: number;
  salt: string;
  heldout: number;
}

const FIELD_COUNT = 5; // role, content, name, tool_calls, tool_call_id, as in TracesBatchBuilder.messageList

/**
 * Expands conversations into samples, written straight into column builders. Each assistant
 * turn becomes one sample whose context is every earlier message.
 *
 * The sample hash (which is also the row id) is sha256 over
 * `tools \x01 enc(context[0]) … enc(context[n-1]) \x02 enc(reply)`, where enc(m) is
 * `role \0 content \0 name \0 tool_calls \0 tool_call_id \x03`. Each message is UTF-8 encoded
 * once, into a scratch buffer laid out exactly as that string: each sample's hash input is then a
 * prefix of the buffer (the reply is written after a \x02 that is removed once hashed), hashed by
 * one-shot `crypto.hash` without building a JS string, and each sample's message columns are
 * memcpy'd from the buffer. Before, every assistant turn re-concatenated and re-encoded the
 * whole context (quadratic in turns) and the hashing and row objects were ~30% of ingest.
 */
export class SampleEncoder {
  private scratch = Buffer.allocUnsafeSlow(1 << 16);
  // Byte range [start, end) of field f of message m at index m * FIELD_COUNT + f; start -1 = null.
  private fieldStart = new Int32Array(64 * FIELD_COUNT);
  private fieldEnd = new Int32Array(64 * FIELD_COUNT);

  encode(conversation: Conversation, source: SampleSource, sink: SampleSink): void {
    const { messages } = conversation;
    const conversationId = conversation.conversationId ?? openingId(messages);
    const split = splitOf(conversationId, source.salt, source.heldout);
    const builder = split === 'heldout' ? sink.heldout : sink.train;
    const metadata = JSON.stringify(conversation.metadata);
    if (this.fieldStart.length < messages.length * FIELD_COUNT) {
      this.fieldStart = new Int32Array(messages.length * FIELD_COUNT * 2);
      this.fieldEnd = new Int32Array(messages.length * FIELD_COUNT * 2);
    }
    const tools = conversation.tools;
    let end = this.writeText(tools ?? '', 0);
    const toolsEnd = end;
    this.scratch[end++] = 0x01;

    const emit = (hashEnd: number, contextEnd: number, reply: number, turnIndex: number): void => {
      const digest = hash('sha256', this.scratch.subarray(0, hashEnd), 'binary'); // 'binary' = latin1
      const text = builder.text;
      text.id.appendHex16(digest);
      text.conversation_id.appendString(conversationId);
      this.appendContext(builder, contextEnd);
      if (reply < 0) {
        text.completion.appendNull();
        text.completion_tool_calls.appendNull();
      } else {
        this.appendField(text.completion, reply, 1, true);
        this.appendField(text.completion_tool_calls, reply, 3, false);
      }
      if (tools === null) text.tools.appendNull();
      else text.tools.appendBytes(this.scratch, 0, toolsEnd);
      text.model.appendString(conversation.model);
      text.source_file.appendString(source.file);
      text.split.appendString(split);
      text.metadata.appendString(metadata);
      builder.endRow(turnIndex, source.line, conversation.createdAtMs);
      sink.sample(digest, split);
    };

    const firstSampled = conversation.expand === 'last' ? messages.length - 1 : 0;
    let turnIndex = 0;
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i];
      const sampled = message.role === 'assistant' && i >= firstSampled && i > 0;
      if (sampled) {
        // Hash `context \x02 enc(reply)`, then drop the \x02 so the buffer holds the next context.
        this.ensure(end + 1);
        this.scratch[end] = 0x02;
        const replyEnd = this.writeMessage(message, i, end + 1);
        emit(replyEnd, i, i, turnIndex);
        this.scratch.copyWithin(end, end + 1, replyEnd);
        for (let f = i * FIELD_COUNT; f < (i + 1) * FIELD_COUNT; f++) {
          if (this.fieldStart[f] >= 0) this.fieldStart[f]--;
          this.fieldEnd[f]--;
        }
        end = replyEnd - 1;
      } else {
        end = this.writeMessage(message, i, end);
      }
      if (message.role === 'assistant') turnIndex++;
    }
    if (messages[messages.length - 1].role !== 'assistant') {
      this.ensure(end + 1);
      this.scratch[end] = 0x02;
      emit(end + 1, messages.length, -1, turnIndex);
    }
  }

  /** The context messages [0, count) into the builder's message columns, copied from the scratch bytes. */
  private appendContext(builder: TracesBatchBuilder, count: number): void {
    const columns = builder.messageList;
    for (let m = 0; m < count; m++) {
      for (let f = 0; f < FIELD_COUNT; f++) this.appendField(columns[f], m, f, false);
    }
  }

  /** Field f of message m; a null field is appended as null, or as '' when `nullAsEmpty`. */
  private appendField(column: Utf8Column, m: number, f: number, nullAsEmpty: boolean): void {
    const at = m * FIELD_COUNT + f;
    const start = this.fieldStart[at];
    if (start < 0) {
      if (nullAsEmpty) column.appendBytes(this.scratch, 0, 0);
      else column.appendNull();
    } else column.appendBytes(this.scratch, start, this.fieldEnd[at]);
  }

  /** Write enc(message) at `at`, recording its field ranges; returns the end. */
  private writeMessage(message: ChatMessage, m: number, at: number): number {
    const base = m * FIELD_COUNT;
    let end = at;
    end = this.writeField(message.role, base, end);
    this.scratch[end++] = 0;
    end = this.writeField(message.content, base + 1, end);
    this.scratch[end++] = 0;
    end = this.writeField(message.name, base + 2, end);
    this.scratch[end++] = 0;
    end = this.writeField(message.tool_calls, base + 3, end);
    this.scratch[end++] = 0;
    end = this.writeField(message.tool_call_id, base + 4, end);
    this.scratch[end++] = 0x03;
    return end;
  }

  private writeField(value: string | null, at: number, offset: number): number {
    if (value === null) {
      this.fieldStart[at] = -1;
      this.fieldEnd[at] = offset;
      this.ensure(offset + 1);
      return offset;
    }
    const end = this.writeText(value, offset);
    this.fieldStart[at] = offset;
    this.fieldEnd[at] = end;
    return end;
  }

  /** UTF-8 `text` at `offset`, leaving room for a separator byte after it; returns the end. */
  private writeText(text: string, offset: number): number {
    const length = text.length;
    this.ensure(offset + length * 3 + 1); // UTF-8 needs at most 3 bytes per UTF-16 unit
    if (length <= 16) {
      // Short strings (roles, names, ids) are nearly always ASCII: a loop beats a call into C++.
      let end = offset;
      for (let k = 0; k < length; k++) {
        const code = text.charCodeAt(k);
        if (code >= 0x80) return offset + this.scratch.write(text, offset, 'utf8');
        this.scratch[end++] = code;
      }
      return end;
    }
    return offset + this.scratch.write(text, offset, 'utf8');
  }

  private ensure(capacity: number): void {
    if (capacity <= this.scratch.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(capacity, this.scratch.length * 2));
    this.scratch.copy(grown, 0, 0, this.scratch.length);
    this.scratch = grown;
  }
}
