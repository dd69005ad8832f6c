/**
 * The set of samples seen so far, keyed by the first 64 bits of each sample's sha256. Written by
 * hand because a JS Set of strings costs ~80 bytes per key; this open-addressing table (load
 * factor 0.25–0.5) costs 16–32 bytes per key, so dedup memory stays small beside the input
 * (a 64-bit key collides by chance with probability ~n²/2⁶⁵: about 3e-6 at ten million samples).
 */
export class SampleHashSet {
  private table: Uint32Array; // pairs (hi, lo); (0, 0) marks an empty slot
  private count = 0;
  private hasZeroKey = false;

  /**
   * `expectedKeys`: roughly how many keys will be added; the table starts as large as they need
   * (load factor 0.5; at most 2^22 slots, 32 MiB), saving the rehashing of every smaller table on the way.
   */
  constructor(expectedKeys = 0) {
    let slots = 1024;
    while (slots < 2 * expectedKeys && slots < 1 << 22) slots *= 2;
    this.table = new Uint32Array(2 * slots);
  }

  get size(): number {
    return this.count;
  }

  /** Add the key in `digest[at, at + 8)`; returns false if it was already present. */
  add(digest: Uint8Array, at = 0): boolean {
    const hi = ((digest[at] << 24) | (digest[at + 1] << 16) | (digest[at + 2] << 8) | digest[at + 3]) >>> 0;
    const lo = ((digest[at + 4] << 24) | (digest[at + 5] << 16) | (digest[at + 6] << 8) | digest[at + 7]) >>> 0;
    if (hi === 0 && lo === 0) {
      if (this.hasZeroKey) return false;
      this.hasZeroKey = true;
      this.count++;
      return true;
    }
    if ((this.count + 1) * 2 > this.table.length / 2) this.grow();
    if (!this.insert(this.table, hi, lo)) return false;
    this.count++;
    return true;
  }

  private insert(table: Uint32Array, hi: number, lo: number): boolean {
    const mask = table.length / 2 - 1;
    let slot = lo & mask; // the key is already uniformly random
    for (;;) {
      const h = table[2 * slot];
      const l = table[2 * slot + 1];
      if (h === 0 && l === 0) {
        table[2 * slot] = hi;
        table[2 * slot + 1] = lo;
        return true;
      }
      if (h === hi && l === lo) return false;
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const old = this.table;
    const next = new Uint32Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0 || old[i + 1] !== 0) this.insert(next, old[i], old[i + 1]);
    }
    this.table = next;
  }
}
