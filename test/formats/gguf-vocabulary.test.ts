import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { readGguf } from '../../src/formats/gguf.js';
import { vocabularyFromGguf, vocabularyFromGgufMetadata } from '../../src/formats/gguf-vocabulary.js';
import { TokenType } from '../../src/tokenizer/vocabulary.js';
import { haveShared, sharedPath } from '../helpers/shared.js';

const vocabPath = (name: string) => `models/vocab/ggml-vocab-${name}.gguf`;
const vocabFile = (name: string) => sharedPath(vocabPath(name));

describe.skipIf(!haveShared(...['llama-spm', 'gpt-2', 'phi-3'].map(vocabPath)))(
  'GGUF embedded tokenizer → Vocabulary',
  () => {
    it('reads the Llama-2 SentencePiece vocabulary', () => {
      const vocabulary = vocabularyFromGguf(vocabFile('llama-spm'));
      expect(vocabulary.model).toBe('llama');
      expect(vocabulary.tokens).toHaveLength(32000);
      expect(vocabulary.tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
      expect(vocabulary.scores).toHaveLength(32000);
      expect(vocabulary.tokenTypes[0]).toBe(TokenType.Unknown);
      expect(vocabulary.tokenTypes[1]).toBe(TokenType.Control);
      expect(vocabulary.tokenTypes[3]).toBe(TokenType.Byte);
      expect(vocabulary).toMatchObject({
        bosId: 1,
        eosId: 2,
        unkId: 0,
        addBos: true,
        addEos: false,
        addSpacePrefix: true,
        pre: 'default',
      });
      expect(vocabulary.merges).toBeUndefined();
    });

    it('reads the GPT-2 BPE vocabulary with its merges', () => {
      const vocabulary = vocabularyFromGguf(readGguf(vocabFile('gpt-2')));
      expect(vocabulary.model).toBe('gpt2');
      expect(vocabulary.tokens).toHaveLength(50257);
      expect(vocabulary.merges).toHaveLength(50000);
      expect(vocabulary.merges?.[0]).toBe('Ġ t');
      expect(vocabulary).toMatchObject({ bosId: 50256, eosId: 50256, addSpacePrefix: false, pre: 'gpt-2' });
      expect(vocabulary.scores).toBeUndefined();
    });

    it('reads Phi-3 special ids and its chat template', () => {
      const vocabulary = vocabularyFromGguf(vocabFile('phi-3'));
      expect(vocabulary.tokens).toHaveLength(32064);
      expect(vocabulary).toMatchObject({ eosId: 32000, padId: 32000, bosId: 1 });
      expect(vocabulary.chatTemplate).toContain('<|assistant|>');
    });

    it('names the file and the problem for bad tokenizer metadata', () => {
      const metadata = readGguf(vocabFile('llama-spm')).metadata;
      expect(() => vocabularyFromGgufMetadata(new Map(), 'x.gguf')).toThrow(/x\.gguf: GGUF has no embedded tokenizer/);
      const badModel = new Map(metadata).set('tokenizer.ggml.model', 'rwkv');
      expect(() => vocabularyFromGgufMetadata(badModel, 'x.gguf')).toThrow(
        /x\.gguf: unsupported GGUF tokenizer model 'rwkv'/,
      );
      const shortScores = new Map(metadata).set('tokenizer.ggml.scores', new Float32Array(3));
      expect(() => vocabularyFromGgufMetadata(shortScores, 'x.gguf')).toThrow(
        /'tokenizer\.ggml\.scores' has 3 entries, the vocabulary has 32000/,
      );
      const badBos = new Map(metadata).set('tokenizer.ggml.bos_token_id', 40000);
      expect(() => vocabularyFromGgufMetadata(badBos, 'x.gguf')).toThrow(InputError);
    });
  },
);
