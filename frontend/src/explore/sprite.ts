// Hover thumbnails: one probe image cropped out of the sprite (a row-major grid of
// `columns` cells of `size` px) by CSS background position, scaled to `shown` px.

export interface Sprite {
  url: string;
  size: number;
  columns: number;
}

/** Top-left pixel of cell `position` in the sprite. */
export function spriteCell(position: number, sprite: Pick<Sprite, 'size' | 'columns'>): { x: number; y: number } {
  const column = position % sprite.columns;
  const row = Math.floor(position / sprite.columns);
  return { x: column * sprite.size, y: row * sprite.size };
}

/** CSS for a `shown` px square showing cell `position` of a sprite of `count` images. */
export function thumbnailStyle(position: number, sprite: Sprite, count: number, shown: number): Record<string, string> {
  const scale = shown / sprite.size;
  const rows = Math.max(1, Math.ceil(count / sprite.columns));
  const { x, y } = spriteCell(position, sprite);
  return {
    width: `${shown}px`,
    height: `${shown}px`,
    'background-image': `url("${sprite.url}")`,
    'background-size': `${sprite.columns * sprite.size * scale}px ${rows * sprite.size * scale}px`,
    'background-position': `-${x * scale}px -${y * scale}px`,
  };
}

export function styleText(style: Record<string, string>): string {
  return Object.entries(style).map(([k, v]) => `${k}:${v}`).join(';');
}
