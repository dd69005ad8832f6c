/** Tokenizers: one interface over llama.cpp-exact GGUF / llama2.c vocabularies and HF tokenizer.json. */
export type { DecodeOptions, EncodeOptions, Tokenizer, TokenizerKind } from './tokenizer.js';
export { LlamaCppTokenizer, type LlamaCppTokenizerOptions } from './llama-cpp.js';
export { endOfGenerationIds } from './end-of-generation.js';
export { HuggingFaceTokenizer, readHuggingFaceTokenizer } from './huggingface.js';
export { loadTokenizer, tokenizerFromVocabulary, type TokenizerSource } from './load.js';
export { TokenType, type TokenizerModel, type Vocabulary } from './vocabulary.js';
