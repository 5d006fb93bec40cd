import { defineConfig } from 'vitest/config';

// The build lands inside the Python package, which serves it and ships it in the wheel.
// `base: './'` keeps every URL relative, so the page works under any path prefix.
export default defineConfig({
  base: './',
  build: {
    outDir: '../src/convscope/serve/static',
    emptyOutDir: true,
    assetsDir: 'assets',
    // ECharts alone is about 500 kB before gzip; the warning at 500 kB would always fire.
    chunkSizeWarningLimit: 900,
  },
  // `npm run dev` serves the sources and passes the API to `convscope serve` on its default port.
  server: {
    proxy: { '/api': { target: 'http://127.0.0.1:8765', changeOrigin: false } },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
