// Hash routes (`#/runs`, `#/explore?runs=a,b&layer=hidden&method=umap`): the server
// serves one page whatever the path prefix, and a link or reload reopens the same view.

export type View = 'runs' | 'explore' | 'model';

export interface Route {
  view: View;
  params: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const body = hash.replace(/^#\/?/, '');
  const [path, query = ''] = body.split('?', 2);
  const view: View = path === 'explore' || path === 'model' ? path : 'runs';
  return { view, params: new URLSearchParams(query) };
}

/** `#/explore?runs=a,b`, `#/model?model=run:ID&image=mnist:test:0` (commas, colons and @ kept readable). */
export function formatRoute(view: View, params: Record<string, string | number | null | undefined> = {}): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === '') continue;
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value)).replace(/%2C/g, ',').replace(/%3A/g, ':').replace(/%40/g, '@')}`);
  }
  return `#/${view}${parts.length ? `?${parts.join('&')}` : ''}`;
}

export function listParam(params: URLSearchParams, key: string): string[] {
  return (params.get(key) ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}
