import { performance } from 'node:perf_hooks';

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export interface MedianComparison {
  medianA: number;
  medianB: number;
  /** medianA / medianB */
  ratio: number;
  round: number;
}

/**
 * Times `a` and `b` interleaved (alternating which goes first), `samples` each, and compares medians.
 * A loaded machine adds noise, so up to `rounds` rounds run and the first within `tolerance` is returned;
 * a real difference (e.g. work done for one side only) fails every round.
 */
export async function compareMedians(
  samples: number,
  a: (i: number) => Promise<unknown>,
  b: (i: number) => Promise<unknown>,
  { tolerance, rounds = 3, settle }: { tolerance: number; rounds?: number; settle?: () => Promise<unknown> },
): Promise<MedianComparison> {
  let last!: MedianComparison;
  for (let round = 1; round <= rounds; round++) {
    const timesA: number[] = [];
    const timesB: number[] = [];
    for (let i = 0; i < samples; i++) {
      const pair: Array<[number[], (i: number) => Promise<unknown>]> = [[timesA, a], [timesB, b]];
      for (const [list, run] of i % 2 ? pair.reverse() : pair) {
        const start = performance.now();
        await run(i);
        list.push(performance.now() - start);
        await settle?.();
      }
    }
    last = { medianA: median(timesA), medianB: median(timesB), ratio: median(timesA) / median(timesB), round };
    if (Math.abs(last.ratio - 1) <= tolerance) return last;
  }
  return last;
}
