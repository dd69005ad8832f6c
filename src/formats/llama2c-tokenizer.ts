/**
 * llama2.c tokenizer files (tokenizer.bin / tok512.bin): uint32 max_token_length, then for each
 * token {float32 score, int32 byte length, bytes}. The token count is not stored: it comes from
 * the checkpoint's vocab_size. llama2.c's exporter replaced SentencePiece's '▁' with ' ', so
 * pieces are turned back into SentencePiece form here (' ' → '▁'); ids 0/1/2 are <unk>/<s>/</s>
 * and `<0xAB>` pieces are byte-fallback tokens.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { TokenType, type Vocabulary } from '../tokenizer/vocabulary.js';

export function readLlama2cTokenizer(path: string, vocabSize: number): Vocabulary {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new InputError(`${path}: cannot read tokenizer (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return parseLlama2cTokenizer(bytes, vocabSize, path);
}

export function parseLlama2cTokenizer(bytes: Uint8Array, vocabSize: number, path = '<buffer>'): Vocabulary {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  if (bytes.byteLength < 4) throw new InputError(`${path}: truncated llama2.c tokenizer (${bytes.byteLength} bytes)`);
  const maxTokenLength = view.getUint32(0, true);
  if (maxTokenLength === 0 || maxTokenLength > 1024) {
    throw new InputError(`${path}: not a llama2.c tokenizer (max_token_length ${maxTokenLength})`);
  }
  const tokens: string[] = [];
  const scores = new Float32Array(vocabSize);
  const tokenTypes = new Int32Array(vocabSize);
  let offset = 4;
  for (let id = 0; id < vocabSize; id++) {
    if (offset + 8 > bytes.byteLength) {
      throw new InputError(
        `${path}: truncated llama2.c tokenizer: token ${id} of ${vocabSize} starts past the end of the file`,
      );
    }
    scores[id] = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    if (length < 0 || length > maxTokenLength || offset + length > bytes.byteLength) {
      throw new InputError(
        `${path}: corrupt llama2.c tokenizer: token ${id} has length ${length} ` +
          `(max ${maxTokenLength}, ${bytes.byteLength - offset} bytes left)`,
      );
    }
    let text: string;
    try {
      text = decoder.decode(bytes.subarray(offset, offset + length));
    } catch {
      throw new InputError(`${path}: corrupt llama2.c tokenizer: token ${id} is not valid UTF-8`);
    }
    offset += length;
    const isByte = /^<0x[0-9A-F]{2}>$/.test(text);
    const isControl = id === 1 || id === 2;
    // llama2.c wrote BOS/EOS as "\n<s>\n" / "\n</s>\n"; GGUF and SentencePiece call them <s> / </s>.
    tokens.push(isControl ? text.trim() : isByte || id === 0 ? text : text.replaceAll(' ', '\u2581'));
    tokenTypes[id] =
      id === 0 ? TokenType.Unknown : isControl ? TokenType.Control : isByte ? TokenType.Byte : TokenType.Normal;
  }
  if (offset !== bytes.byteLength) {
    throw new InputError(
      `${path}: llama2.c tokenizer has ${bytes.byteLength - offset} trailing ` +
        `bytes after ${vocabSize} tokens (does the vocab size match the checkpoint?)`,
    );
  }
  return {
    model: 'llama',
    tokens,
    scores,
    tokenTypes,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    addBos: true,
    addEos: false,
    addSpacePrefix: true,
  };
}
