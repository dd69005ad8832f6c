/**
 * Make every synchronous tensor read throw — Tensor.dataSync / arraySync / bufferSync and the engine's
 * readSync beneath them — the way the webgpu backend fails under Node, where only `await t.data()`
 * works. For tests that run real commands on cpu and check that they read only asynchronously.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Refuse (and record) every synchronous read until `restore` is called; `path` names what is checked. */
export function forbidSyncReads(path: string): { attempts: string[]; restore: () => void } {
  const attempts: string[] = [];
  const prototype = tf.Tensor.prototype;
  const engine = tf.engine();
  const saved = {
    dataSync: prototype.dataSync,
    arraySync: prototype.arraySync,
    bufferSync: prototype.bufferSync,
    readSync: engine.readSync,
  };
  const refuse = (what: string) => (): never => {
    attempts.push(what);
    throw new Error(`synchronous read (${what}) on the ${path} path`);
  };
  prototype.dataSync = refuse('dataSync');
  prototype.arraySync = refuse('arraySync');
  prototype.bufferSync = refuse('bufferSync');
  engine.readSync = refuse('engine.readSync');
  return {
    attempts,
    restore: () => {
      prototype.dataSync = saved.dataSync;
      prototype.arraySync = saved.arraySync;
      prototype.bufferSync = saved.bufferSync;
      engine.readSync = saved.readSync;
    },
  };
}
