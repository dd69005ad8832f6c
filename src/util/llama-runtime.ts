/**
 * One way to start llama.cpp (node-llama-cpp) in this process, for the engines, the speculative loop,
 * the cost measurement and the tokenizers. llama.cpp's log is off: its log callback is global to the
 * native binding, and node-llama-cpp 3.21.1 prints messages that arrive before its logger is ready
 * itself — errors on stdout, where `--json` summaries go (measured here; vocabulary-only loads log
 * "missing tensor" errors and load anyway). Failures reach fireopt as exceptions, which it reports.
 */
import type { Llama } from 'node-llama-cpp';

/** A llama.cpp runtime on the CPU with the prebuilt binaries (never compiled at run time). */
export async function startLlama(): Promise<Llama> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  return getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.disabled });
}
