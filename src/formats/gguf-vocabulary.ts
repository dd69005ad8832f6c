/**
 * The tokenizer embedded in a GGUF file (`tokenizer.ggml.*` metadata) as a format-independent
 * `Vocabulary`, and back (the writer side lives in gguf-write.ts, which calls `vocabularyMetadata`).
 *
 * Defaults follow llama.cpp (src/llama-vocab.cpp): when `tokenizer.ggml.add_space_prefix` is absent
 * a SentencePiece (`llama`) vocabulary adds the prefix and a BPE (`gpt2`) one does not; absent
 * `add_bos_token` means "add BOS" for SentencePiece and "do not" for BPE.
 */
import { InputError } from '../errors.js';
import { TokenType, type TokenizerModel, type Vocabulary } from '../tokenizer/vocabulary.js';
import { readGguf, type GgufFile, type GgufValue } from './gguf.js';

const TOKENIZER_MODELS: readonly TokenizerModel[] = ['llama', 'gpt2'];

/** Build a Vocabulary from GGUF metadata; `path` names the file in errors. */
export function vocabularyFromGgufMetadata(metadata: Map<string, GgufValue>, path: string): Vocabulary {
  const model = metadata.get('tokenizer.ggml.model');
  if (model === undefined)
    throw new InputError(`${path}: GGUF has no embedded tokenizer (no 'tokenizer.ggml.model' metadata)`);
  if (typeof model !== 'string' || !(TOKENIZER_MODELS as readonly string[]).includes(model)) {
    throw new InputError(
      `${path}: unsupported GGUF tokenizer model '${String(model)}' (fireopt ` +
        `reads 'llama' SentencePiece and 'gpt2' BPE)`,
    );
  }
  const tokenizerModel = model as TokenizerModel;

  const tokensValue = metadata.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokensValue) || !tokensValue.every((t): t is string => typeof t === 'string')) {
    throw new InputError(`${path}: GGUF metadata 'tokenizer.ggml.tokens' is missing or is not an array of strings`);
  }
  const tokens: string[] = tokensValue;
  const vocabSize = tokens.length;
  if (vocabSize === 0) throw new InputError(`${path}: GGUF metadata 'tokenizer.ggml.tokens' is empty`);

  const scoresValue = metadata.get('tokenizer.ggml.scores');
  let scores: Float32Array | undefined;
  if (scoresValue !== undefined) {
    scores = numericArray(scoresValue, 'tokenizer.ggml.scores', vocabSize, path, (n) => new Float32Array(n));
  }

  const typesValue = metadata.get('tokenizer.ggml.token_type');
  let tokenTypes: Int32Array;
  if (typesValue !== undefined) {
    tokenTypes = numericArray(typesValue, 'tokenizer.ggml.token_type', vocabSize, path, (n) => new Int32Array(n));
  } else {
    tokenTypes = new Int32Array(vocabSize).fill(TokenType.Normal);
  }

  const mergesValue = metadata.get('tokenizer.ggml.merges');
  let merges: string[] | undefined;
  if (mergesValue !== undefined) {
    if (!Array.isArray(mergesValue) || !mergesValue.every((m): m is string => typeof m === 'string')) {
      throw new InputError(`${path}: GGUF metadata 'tokenizer.ggml.merges' is not an array of strings`);
    }
    merges = mergesValue;
  }
  if (tokenizerModel === 'gpt2' && !merges)
    throw new InputError(`${path}: GGUF 'gpt2' tokenizer has no 'tokenizer.ggml.merges'`);

  const tokenId = (key: string): number | undefined => {
    const value = metadata.get(`tokenizer.ggml.${key}`);
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      throw new InputError(`${path}: GGUF metadata 'tokenizer.ggml.${key}' is not an integer token id`);
    }
    // llama.cpp writes -1 (as uint32 0xFFFFFFFF) for "no such token".
    if (value < 0 || value === 0xffffffff) return undefined;
    if (value >= vocabSize)
      throw new InputError(
        `${path}: GGUF metadata 'tokenizer.ggml.${key}' is ${value}, past the ${vocabSize}-token vocabulary`,
      );
    return value;
  };
  const flag = (key: string): boolean | undefined => {
    const value = metadata.get(`tokenizer.ggml.${key}`);
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean')
      throw new InputError(`${path}: GGUF metadata 'tokenizer.ggml.${key}' is not a boolean`);
    return value;
  };
  const optionalString = (key: string): string | undefined => {
    const value = metadata.get(key);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new InputError(`${path}: GGUF metadata '${key}' is not a string`);
    return value;
  };

  const isSentencePiece = tokenizerModel === 'llama';
  const vocabulary: Vocabulary = {
    model: tokenizerModel,
    tokens,
    tokenTypes,
    addBos: flag('add_bos_token') ?? isSentencePiece,
    addEos: flag('add_eos_token') ?? false,
    addSpacePrefix: flag('add_space_prefix') ?? isSentencePiece,
  };
  if (scores) vocabulary.scores = scores;
  if (merges) vocabulary.merges = merges;
  const pre = optionalString('tokenizer.ggml.pre');
  if (pre !== undefined) vocabulary.pre = pre;
  const chatTemplate = optionalString('tokenizer.chat_template');
  if (chatTemplate !== undefined) vocabulary.chatTemplate = chatTemplate;
  const ids = {
    bosId: 'bos_token_id',
    eosId: 'eos_token_id',
    unkId: 'unknown_token_id',
    padId: 'padding_token_id',
  } as const;
  for (const [field, key] of Object.entries(ids) as Array<[keyof typeof ids, string]>) {
    const id = tokenId(key);
    if (id !== undefined) vocabulary[field] = id;
  }
  return vocabulary;
}

/** Read the embedded tokenizer of a GGUF file (a full model or a vocab-only file). */
export function vocabularyFromGguf(file: GgufFile | string): Vocabulary {
  const gguf = typeof file === 'string' ? readGguf(file) : file;
  return vocabularyFromGgufMetadata(gguf.metadata, gguf.path);
}

function numericArray<T extends Float32Array | Int32Array>(
  value: GgufValue,
  key: string,
  length: number,
  path: string,
  make: (n: number) => T,
): T {
  let items: ArrayLike<unknown>;
  if (ArrayBuffer.isView(value)) items = value;
  else if (Array.isArray(value)) items = value;
  else throw new InputError(`${path}: GGUF metadata '${key}' is not an array`);
  if (items.length !== length) {
    throw new InputError(
      `${path}: GGUF metadata '${key}' has ${items.length} entries, the vocabulary has ${length} tokens`,
    );
  }
  const out = make(length);
  for (let i = 0; i < length; i++) {
    const item = items[i];
    if (typeof item !== 'number') throw new InputError(`${path}: GGUF metadata '${key}' entry ${i} is not a number`);
    out[i] = item;
  }
  return out;
}
