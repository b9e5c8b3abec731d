/**
 * Seeded randomness for simulations: the same seed gives the same week (STYLE principle 1: time
 * and randomness come in through ports, never from Math.random). Values are keyed, so what
 * happens at 14:00 does not depend on how often anyone looked before.
 */
export class SeededRandom {
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
  }

  /**
   * A number in [0, 1) for this stream and index; the same arguments always give the same number.
   *
   * @example
   * const random = new SeededRandom(42);
   * random.at('dropout', hourIndex); // 0.7133…
   */
  at(stream: string, index: number): number {
    let h = mix(this.seed ^ 0x9e3779b9);
    for (let i = 0; i < stream.length; i++) h = mix(h ^ stream.charCodeAt(i));
    h = mix(h ^ (index >>> 0));
    h = mix(h ^ Math.floor(index / 2 ** 32));
    return h / 2 ** 32;
  }
}

/** One round of a 32-bit integer hash (from MurmurHash3's finaliser). */
function mix(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
