/**
 * Conversation → samples. Each assistant turn becomes one sample whose context is every earlier
 * message; a conversation that ends without an assistant reply (or has none) also yields one
 * prompt sample with a null completion, for distill to complete.
 */
import { hash } from 'node:crypto';
import { hashUnit } from '../util/hash.js';
import type { TraceSplit } from '../formats/traces-schema.js';
import { ROW_CAPACITY, type TracesBatchBuilder, type Utf8Column } from './columns.js';
import { openingId, type ChatMessage, type Conversation } from './records.js';
import { redactText, type RedactionCounts } from './redact.js';
import { nativeHashing, type NativeHashing } from '../backend/native.js';

/**
 * Which split a conversation belongs to: a salted sha256 of its id, so it never changes. `native`:
 * the addon's hashing (null: crypto.hash; the same digest either way).
 */
export function splitOf(
  conversationId: string,
  salt: string,
  heldoutFraction: number,
  native: NativeHashing | null = nativeHashing() ?? null,
): TraceSplit {
  if (heldoutFraction <= 0) return 'train';
  return hashUnit(`${salt}\u0000${conversationId}`, native) < heldoutFraction ? 'heldout' : 'train';
}

/** Mask sensitive text in every message (content and tool-call arguments), in place. */
export function redactConversation(conversation: Conversation, counts: RedactionCounts): void {
  for (const message of conversation.messages) {
    if (message.content !== null) message.content = redactText(message.content, counts);
    if (message.tool_calls !== null) message.tool_calls = redactText(message.tool_calls, counts);
  }
}

/** Where encoded samples go: the builder of each split, and each sample's split in input order. */
export interface SampleSink {
  train: TracesBatchBuilder;
  heldout: TracesBatchBuilder;
  /** Called once per sample, after its row is written (its id is filled in by `SampleEncoder.finish`). */
  sample(split: TraceSplit): void;
}

export interface SampleSource {
  file: string;
  line: number;
  salt: string;
  heldout: number;
}

const FIELD_COUNT = 5; // role, content, name, tool_calls, tool_call_id, as in TracesBatchBuilder.messageList
export const DIGEST_BYTES = 32;
/** Between a sample's context and its reply in the hashed bytes (see SampleEncoder). */
const REPLY_SEPARATOR = 0x02;

/**
 * Expands conversations into samples, written straight into column builders. Each assistant
 * turn becomes one sample whose context is every earlier message.
 *
 * The sample hash (which is also the row id) is sha256 over
 * `tools \x01 enc(context[0]) … enc(context[n-1]) \x02 enc(reply)`, where enc(m) is
 * `role \0 content \0 name \0 tool_calls \0 tool_call_id \x03`. Each conversation is UTF-8
 * encoded once, as `tools \x01 enc(m[0]) enc(m[1]) …`, into a buffer that holds the whole
 * block's conversations: a sample's hash input is then a prefix of its conversation's bytes,
 * \x02, and the reply's bytes that follow that prefix, and its message columns are memcpy'd from
 * the buffer. The hashes are computed at the end of the block (`finish`), all in one call into
 * the native addon where it is built (src/backend/native.ts: one crypto.hash per sample cost
 * ~0.5 µs of overhead each, and every turn re-hashed its whole context), else one `crypto.hash`
 * per sample; the rows' ids are written then (their bytes are reserved when the row is written).
 */
export class SampleEncoder {
  // This block's conversations, encoded (see above), kept until `finish`.
  private stream = Buffer.allocUnsafeSlow(1 << 20);
  private streamEnd = 0;
  // Byte range [start, end) in `stream` of field f of message m of the current conversation at
  // index m * FIELD_COUNT + f; start -1 = null.
  private fieldStart = new Int32Array(64 * FIELD_COUNT);
  private fieldEnd = new Int32Array(64 * FIELD_COUNT);
  // Per sample since the last `finish`: its hash input as [conversation start, context end, reply end]
  // in `stream`, its split (1 = heldout) and its row in that split's builder.
  private spans = new Int32Array(3 * ROW_CAPACITY);
  private heldout = new Uint8Array(ROW_CAPACITY);
  private rows = new Int32Array(ROW_CAPACITY);
  private pending = 0;
  private digests = new Uint8Array(DIGEST_BYTES * ROW_CAPACITY);
  private readonly native = nativeHashing() ?? null;
  private hashInput: Buffer | undefined; // crypto.hash's input, without the addon

  encode(conversation: Conversation, source: SampleSource, sink: SampleSink): void {
    const { messages } = conversation;
    const conversationId = conversation.conversationId ?? openingId(messages);
    const split = splitOf(conversationId, source.salt, source.heldout, this.native);
    const builder = split === 'heldout' ? sink.heldout : sink.train;
    const metadata = JSON.stringify(conversation.metadata);
    if (this.fieldStart.length < messages.length * FIELD_COUNT) {
      this.fieldStart = new Int32Array(messages.length * FIELD_COUNT * 2);
      this.fieldEnd = new Int32Array(messages.length * FIELD_COUNT * 2);
    }
    const tools = conversation.tools;
    const start = this.streamEnd;
    let end = this.writeText(tools ?? '', start);
    const toolsEnd = end;
    this.stream[end++] = 0x01;

    // One sample: context = messages [0, contextCount) (bytes [start, contextEnd)),
    // reply = message `reply` (bytes [contextEnd, replyEnd)).
    const emit = (
      contextEnd: number,
      replyEnd: number,
      contextCount: number,
      reply: number,
      turnIndex: number,
    ): void => {
      this.addPending(start, contextEnd, replyEnd, split === 'heldout', builder.length);
      const text = builder.text;
      text.id.appendUnset(DIGEST_BYTES); // 32 hex digits of the digest's first 16 bytes, written by `finish`
      text.conversation_id.appendString(conversationId);
      this.appendContext(builder, contextCount);
      if (reply < 0) {
        text.completion.appendNull();
        text.completion_tool_calls.appendNull();
      } else {
        this.appendField(text.completion, reply, 1, true);
        this.appendField(text.completion_tool_calls, reply, 3, false);
      }
      if (tools === null) text.tools.appendNull();
      else text.tools.appendBytes(this.stream, start, toolsEnd);
      text.model.appendString(conversation.model);
      text.source_file.appendString(source.file);
      text.split.appendString(split);
      text.metadata.appendString(metadata);
      builder.endRow(turnIndex, source.line, conversation.createdAtMs);
      sink.sample(split);
    };

    const firstSampled = conversation.expand === 'last' ? messages.length - 1 : 0;
    let turnIndex = 0;
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i];
      const contextEnd = end;
      end = this.writeMessage(message, i, end);
      if (message.role === 'assistant' && i >= firstSampled && i > 0) emit(contextEnd, end, i, i, turnIndex);
      if (message.role === 'assistant') turnIndex++;
    }
    if (messages[messages.length - 1].role !== 'assistant') emit(end, end, messages.length, -1, turnIndex);
    this.streamEnd = end;
  }

  /**
   * Hash the samples encoded since the last `finish`, write each one's id into its row, and
   * return the digests (32 bytes per sample, in encoding order; valid until the next `encode`).
   */
  finish(sink: SampleSink): Uint8Array {
    const count = this.pending;
    if (this.digests.length < count * DIGEST_BYTES) this.digests = new Uint8Array(count * DIGEST_BYTES * 2);
    const digests = this.digests;
    if (this.native) this.native.sampleDigests(this.stream, this.spans, count, REPLY_SEPARATOR, digests);
    else this.hashEach(count);
    for (let i = 0; i < count; i++) {
      const builder = this.heldout[i] ? sink.heldout : sink.train;
      builder.text.id.setHex(this.rows[i], digests, i * DIGEST_BYTES, 16);
    }
    this.pending = 0;
    this.streamEnd = 0;
    return digests.subarray(0, count * DIGEST_BYTES);
  }

  /** `finish` without the addon: the same digests, by one `crypto.hash` per sample over a copy of its input. */
  private hashEach(count: number): void {
    const { stream, spans, digests } = this;
    for (let i = 0; i < count; i++) {
      const start = spans[3 * i];
      const contextEnd = spans[3 * i + 1];
      const replyEnd = spans[3 * i + 2];
      const length = replyEnd - start + 1;
      if (!this.hashInput || this.hashInput.length < length)
        this.hashInput = Buffer.allocUnsafeSlow(Math.max(length, 2 * (this.hashInput?.length ?? 1 << 16)));
      const input = this.hashInput;
      stream.copy(input, 0, start, contextEnd);
      input[contextEnd - start] = REPLY_SEPARATOR;
      stream.copy(input, contextEnd - start + 1, contextEnd, replyEnd);
      // 'binary' (latin1, one char per byte): a short heap string is cheaper to make than a Buffer.
      const digest = hash('sha256', input.subarray(0, length), 'binary');
      for (let k = 0; k < DIGEST_BYTES; k++) digests[i * DIGEST_BYTES + k] = digest.charCodeAt(k);
    }
  }

  private addPending(start: number, contextEnd: number, replyEnd: number, heldout: boolean, row: number): void {
    const i = this.pending++;
    if (i === this.rows.length) {
      this.spans = grown(this.spans, this.spans.length * 2);
      this.heldout = grown(this.heldout, this.heldout.length * 2);
      this.rows = grown(this.rows, this.rows.length * 2);
    }
    this.spans[3 * i] = start;
    this.spans[3 * i + 1] = contextEnd;
    this.spans[3 * i + 2] = replyEnd;
    this.heldout[i] = heldout ? 1 : 0;
    this.rows[i] = row;
  }

  /** The context messages [0, count) into the builder's message columns, copied from the stream's bytes. */
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
      if (nullAsEmpty) column.appendBytes(this.stream, 0, 0);
      else column.appendNull();
    } else column.appendBytes(this.stream, start, this.fieldEnd[at]);
  }

  /** Write enc(message) at `at`, recording its field ranges; returns the end. */
  private writeMessage(message: ChatMessage, m: number, at: number): number {
    const base = m * FIELD_COUNT;
    let end = at;
    end = this.writeField(message.role, base, end);
    this.stream[end++] = 0;
    end = this.writeField(message.content, base + 1, end);
    this.stream[end++] = 0;
    end = this.writeField(message.name, base + 2, end);
    this.stream[end++] = 0;
    end = this.writeField(message.tool_calls, base + 3, end);
    this.stream[end++] = 0;
    end = this.writeField(message.tool_call_id, base + 4, end);
    this.stream[end++] = 0x03;
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
        if (code >= 0x80) return offset + this.stream.write(text, offset, 'utf8');
        this.stream[end++] = code;
      }
      return end;
    }
    return offset + this.stream.write(text, offset, 'utf8');
  }

  private ensure(capacity: number): void {
    if (capacity <= this.stream.length) return;
    const grownStream = Buffer.allocUnsafeSlow(Math.max(capacity, this.stream.length * 2));
    this.stream.copy(grownStream, 0, 0, this.stream.length);
    this.stream = grownStream;
  }
}

/** A copy of `array` with room for `length` values. */
function grown<T extends Int32Array | Uint8Array>(array: T, length: number): T {
  const copy = new (array.constructor as new (n: number) => T)(length);
  copy.set(array);
  return copy;
}
