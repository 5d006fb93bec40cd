// Colours that people with the common colour-vision deficiencies can tell apart.
// Okabe & Ito's eight (2008), black swapped for a dark grey-blue, extended with two of
// Paul Tol's "muted" colours (wine, olive) that stay distinct from them: ten classes.
export const CLASS_PALETTE = [
  '#0072B2', // blue
  '#E69F00', // orange
  '#009E73', // bluish green
  '#CC79A7', // reddish purple
  '#56B4E9', // sky blue
  '#D55E00', // vermillion
  '#F0E442', // yellow
  '#882255', // wine (Tol)
  '#999933', // olive (Tol)
  '#3D4B5C', // slate (for Okabe-Ito's black)
] as const;

/** Right and wrong: blue and vermillion, the pair that survives every common deficiency. */
export const RIGHT = '#0072B2';
export const WRONG = '#D55E00';
export const UNKNOWN = '#9A9A9A';

/** The colour of class `k`; past ten classes the colours repeat (the legend says so). */
export function classColour(k: number): string {
  if (!Number.isInteger(k) || k < 0) return UNKNOWN;
  return CLASS_PALETTE[k % CLASS_PALETTE.length];
}

/** One colour per run in the curves (the same ten, in order). */
export function runColour(i: number): string {
  return CLASS_PALETTE[i % CLASS_PALETTE.length];
}

/** `#rrggbb` with an alpha as `rgba(...)`. */
export function withAlpha(hex: string, alpha: number): string {
  const v = parseInt(hex.slice(1), 16);
  return `rgba(${(v >> 16) & 255},${(v >> 8) & 255},${v & 255},${alpha})`;
}
