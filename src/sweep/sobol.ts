/**
 * The Sobol low-discrepancy sequence (unscrambled), built from Joe & Kuo's direction numbers
 * (new-joe-kuo-6.21201, S. Joe and F. Y. Kuo, "Constructing Sobol sequences with better
 * two-dimensional projections", SIAM J. Sci. Comput. 30, 2008): point n in dimension j is the XOR
 * of the direction numbers v_{j,k} over the bits k set in the Gray code of n, read as a binary
 * fraction. The first point is the origin; any power-of-two prefix is balanced (each dyadic box
 * of that volume holds one point).
 */
import { InputError } from '../errors.ts';

/** Bits of each coordinate: points are multiples of 2⁻³². */
const BITS = 32;

/**
 * Dimensions 2..21 of new-joe-kuo-6.21201: the degree s of the primitive polynomial, its inner
 * coefficients a (bits a_1..a_{s−1}, most significant first) and the initial m_1..m_s.
 * Dimension 1 is the van der Corput sequence (every m_k = 1).
 */
const JOE_KUO: readonly { s: number; a: number; m: readonly number[] }[] = [
  { s: 1, a: 0, m: [1] },
  { s: 2, a: 1, m: [1, 3] },
  { s: 3, a: 1, m: [1, 3, 1] },
  { s: 3, a: 2, m: [1, 1, 1] },
  { s: 4, a: 1, m: [1, 1, 3, 3] },
  { s: 4, a: 4, m: [1, 3, 5, 13] },
  { s: 5, a: 2, m: [1, 1, 5, 5, 17] },
  { s: 5, a: 4, m: [1, 1, 5, 5, 5] },
  { s: 5, a: 7, m: [1, 1, 7, 11, 19] },
  { s: 5, a: 11, m: [1, 1, 5, 1, 1] },
  { s: 5, a: 13, m: [1, 1, 1, 3, 11] },
  { s: 5, a: 14, m: [1, 3, 5, 5, 31] },
  { s: 6, a: 1, m: [1, 3, 3, 9, 7, 49] },
  { s: 6, a: 13, m: [1, 1, 1, 15, 21, 21] },
  { s: 6, a: 16, m: [1, 3, 1, 13, 27, 49] },
  { s: 6, a: 19, m: [1, 1, 1, 15, 7, 5] },
  { s: 6, a: 22, m: [1, 3, 1, 15, 13, 25] },
  { s: 6, a: 25, m: [1, 1, 5, 5, 19, 61] },
  { s: 7, a: 1, m: [1, 3, 7, 11, 23, 15, 103] },
  { s: 7, a: 4, m: [1, 3, 7, 13, 13, 15, 69] },
];

export const SOBOL_MAX_DIMENSIONS = JOE_KUO.length + 1;

/**
 * The 32 direction numbers of one dimension as 32-bit integers, v_k = m_k · 2^(32−k).
 * Beyond the initial m's, the recurrence of the polynomial x^s + a_1 x^{s−1} + … + 1:
 *   v_k = v_{k−s} ⊕ (v_{k−s} >> s) ⊕ a_1 v_{k−1} ⊕ … ⊕ a_{s−1} v_{k−s+1}.
 */
function directionNumbers(dimension: number): Uint32Array {
  const v = new Uint32Array(BITS);
  if (dimension === 0) {
    for (let k = 0; k < BITS; k++) v[k] = 2 ** (BITS - 1 - k);
    return v;
  }
  const { s, a, m } = JOE_KUO[dimension - 1];
  for (let k = 0; k < BITS; k++) {
    if (k < s) {
      v[k] = m[k] * 2 ** (BITS - 1 - k);
      continue;
    }
    let value = v[k - s] ^ (v[k - s] >>> s);
    for (let i = 1; i < s; i++) {
      if ((a >>> (s - 1 - i)) & 1) value ^= v[k - i];
    }
    v[k] = value >>> 0;
  }
  return v;
}

/** Points `start` … `start + count − 1` of the sequence in `dimensions` dimensions, each in [0, 1). */
export function sobolPoints(count: number, dimensions: number, start = 0): number[][] {
  if (dimensions > SOBOL_MAX_DIMENSIONS) {
    throw new InputError(
      `The sobol sampler takes at most ${SOBOL_MAX_DIMENSIONS} parameters, got ${dimensions}: ` +
        "use sampler 'random' or fewer parameters.",
    );
  }
  const directions = Array.from({ length: dimensions }, (_, j) => directionNumbers(j));
  const points: number[][] = [];
  for (let n = start; n < start + count; n++) {
    const gray = n ^ (n >>> 1);
    points.push(
      directions.map((v) => {
        let x = 0;
        for (let k = 0; k < BITS && gray >>> k; k++) if ((gray >>> k) & 1) x ^= v[k];
        return (x >>> 0) / 2 ** BITS;
      }),
    );
  }
  return points;
}
