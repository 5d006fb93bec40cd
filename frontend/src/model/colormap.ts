// Colour maps as 256-entry lookup tables (RGB bytes), the colour bar drawn under a
// picture, and tick positions for it. viridis and RdBu are matplotlib's tables (the CLI
// figures use the same ones), so a map looks alike in the dashboard and in a PNG.
// viridis (perceptually uniform, lightness rising) and gray read in any colour vision;
// the diverging map is ColorBrewer's RdBu reversed (blue negative, white zero, red
// positive), which ColorBrewer lists as colour-blind safe: its two halves differ in
// lightness as well as hue.
import { h } from '../dom';

export type ColormapName = 'viridis' | 'gray' | 'diverging';

/** 256 RGB triples, entry `i` at bytes `3i..3i+2`. */
export type Lut = Uint8ClampedArray;

function fromHex(hex: string): Lut {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256 * 3; i += 1) lut[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return lut;
}

function grayLut(): Lut {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i += 1) lut.fill(i, 3 * i, 3 * i + 3);
  return lut;
}

// matplotlib 3.11 `viridis` and `RdBu_r`, sampled at i/255 and rounded to bytes.
const VIRIDIS_HEX = '44015444025645045745055946075a46085c460a5d460b5e470d60470e6147106347116447136548146748166848176948186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677482878482979472a7a472c7a472d7b472e7c472f7d46307e46327e46337f463480453581453781453882443983443a83443b84433d84433e85423f854240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b3b528b3a538b3a548c39558c39568c38588c38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d33638d32648e32658e31668e31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f881fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a88423a98324aa8325ab8225ac8226ad8127ad8128ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b32b67a34b67935b77937b87838b9773aba763bbb753dbc743fbc7340bd7242be7144bf7046c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc8635ec96260ca6063cb5f65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d84d44b86d54989d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21ad8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61ef6e620f8e621fbe723fde725';
const RDBU_R_HEX = '05306106326407346708366a09386d0a3b700c3d730d3f760e41790f437b10457e114781124984134c87144e8a15508d1752901854931956961a58991b5a9c1c5c9f1d5fa21e61a51f63a82065ab2267ac2369ad246aae266caf276eb02870b12a71b22b73b32c75b42e77b52f79b5307ab6327cb7337eb83480b93681ba3783bb3885bc3a87bd3b88be3c8abe3e8cbf3f8ec0408fc14291c24393c34695c44997c54c99c64f9bc7529dc8569fc959a1ca5ca3cb5fa5cd62a7ce65a9cf68abd06bacd16eaed271b0d375b2d478b4d57bb6d67eb8d781bad884bcd987beda8ac0db8dc2dc90c4dd93c6de96c7df98c8e09bc9e09dcbe1a0cce2a2cde3a5cee3a7d0e4a9d1e5acd2e5aed3e6b1d5e7b3d6e8b6d7e8b8d8e9bbdaeabddbeac0dcebc2ddecc5dfecc7e0edcae1eecce2efcfe4efd1e5f0d2e6f0d4e6f1d5e7f1d7e8f1d8e9f1dae9f2dbeaf2ddebf2deebf2e0ecf3e1edf3e3edf3e4eef4e6eff4e7f0f4e9f0f4eaf1f5ecf2f5edf2f5eff3f5f0f4f6f2f5f6f3f5f6f5f6f7f6f7f7f7f6f6f7f5f4f8f4f2f8f3f0f8f2eff8f1edf9f0ebf9efe9f9eee7f9ede5f9ebe3faeae1fae9dffae8defae7dcfbe6dafbe5d8fbe4d6fbe3d4fce2d2fce0d0fcdfcffcdecdfdddcbfddcc9fddbc7fdd9c4fcd7c2fcd5bffcd3bcfbd0b9fbceb7fbccb4facab1fac8aff9c6acf9c4a9f9c2a7f8bfa4f8bda1f8bb9ef7b99cf7b799f7b596f6b394f6b191f6af8ef5ac8bf5aa89f5a886f4a683f3a481f2a17ff19e7df09c7bef9979ee9677ec9374eb9172ea8e70e98b6ee8896ce6866ae58368e48066e37e64e27b62e17860df765ede735cdd7059dc6e57db6b55da6853d86551d7634fd6604dd55d4cd35a4ad25849d05548cf5246ce4f45cc4c44cb4942c94741c84440c6413ec53e3dc43b3cc2383ac13639bf3338be3036bd2d35bb2a34ba2832b82531b72230b61f2eb41c2db3192cb1182bae172aab162aa81529a51429a213289f12289c1127991027960f27930e26900d268d0c258a0b25870a248409248108237f08237c07227906227605217304217003206d02206a011f67001f';

export const COLORMAPS: Readonly<Record<ColormapName, Lut>> = {
  viridis: fromHex(VIRIDIS_HEX),
  gray: grayLut(),
  diverging: fromHex(RDBU_R_HEX),
};

export const COLORMAP_LABELS: Readonly<Record<ColormapName, string>> = {
  viridis: 'viridis',
  gray: 'gray',
  diverging: 'diverging (blue − · white 0 · red +)',
};

/** The LUT index of `t` in [0, 1] (clamped; NaN becomes 0). */
export function lutIndex(t: number): number {
  if (!Number.isFinite(t)) return 0;
  return Math.max(0, Math.min(255, Math.round(t * 255)));
}

/** The colour at `t` in [0, 1] as [r, g, b]. */
export function colourAt(lut: Lut, t: number): [number, number, number] {
  const i = 3 * lutIndex(t);
  return [lut[i], lut[i + 1], lut[i + 2]];
}

export function cssColour(lut: Lut, t: number): string {
  const [r, g, b] = colourAt(lut, t);
  return `rgb(${r},${g},${b})`;
}

/** CIELAB lightness L* (0..100) of an sRGB colour given as bytes. */
export function lightness(r: number, g: number, b: number): number {
  const lin = (c: number) => {
    const v = c / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const y = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  return y > 216 / 24389 ? 116 * Math.cbrt(y) - 16 : (24389 / 27) * y;
}

/** Black or white, whichever reads better on a background of this colour. */
export function inkOn(r: number, g: number, b: number): string {
  return lightness(r, g, b) > 55 ? '#1f2733' : '#ffffff';
}

/** Up to about `count` round tick values inside [lo, hi] (1, 2 or 5 times a power of ten). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count - 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw * 0.999) ?? 10 * power;
  const ticks: number[] = [];
  const first = Math.ceil(lo / step - 1e-9) * step;
  for (let v = first; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return ticks;
}

/** A number short enough for a tick or a grid cell: 3 significant digits, exponent when tiny or huge. */
export function shortNumber(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '−∞';
  if (value === 0) return '0';
  const abs = Math.abs(value);
  const text = abs >= 1e5 || abs < 1e-3 ? value.toExponential(digits - 1) : Number(value.toPrecision(digits)).toString();
  return text.replace(/-/g, '−');
}

export interface ColourBarOptions {
  /** What the bar's numbers are (read by screen readers and shown above it). */
  label: string;
  /** Texts at the two ends instead of numeric ticks (a per-map scale has no shared numbers). */
  ends?: [string, string];
  width?: number;
}

/** A horizontal colour bar from lo to hi with numeric ticks under it. */
export function colourBar(lut: Lut, lo: number, hi: number, options: ColourBarOptions): HTMLElement {
  const width = options.width ?? 220;
  const canvas = h('canvas', { width: 256, height: 1, class: 'cs-colourbar-strip', 'aria-hidden': 'true' }) as HTMLCanvasElement;
  canvas.style.width = `${width}px`;
  const g = canvas.getContext('2d');
  if (g) {
    const image = g.createImageData(256, 1);
    for (let i = 0; i < 256; i += 1) {
      image.data.set([lut[3 * i], lut[3 * i + 1], lut[3 * i + 2], 255], 4 * i);
    }
    g.putImageData(image, 0, 0);
  }
  const scale = h('div', { class: 'cs-colourbar-ticks', style: `width:${width}px` });
  if (options.ends) {
    scale.append(h('span', { class: 'cs-tick', style: 'left:0' }, options.ends[0]), h('span', { class: 'cs-tick cs-tick-end', style: 'right:0' }, options.ends[1]));
  } else {
    const span = hi - lo;
    const ticks = niceTicks(lo, hi, 5);
    for (const t of ticks) {
      const x = span > 0 ? ((t - lo) / span) * 100 : 50;
      scale.append(h('span', { class: 'cs-tick', style: `left:${x.toFixed(2)}%` }, shortNumber(t)));
    }
  }
  const summary = options.ends ? `${options.label}: ${options.ends[0]} to ${options.ends[1]}` : `${options.label}: ${shortNumber(lo)} to ${shortNumber(hi)}`;
  return h('figure', { class: 'cs-colourbar', role: 'img', 'aria-label': summary }, h('figcaption', { class: 'cs-colourbar-label' }, options.label), canvas, scale);
}
