// Vite build of the dashboard: one static bundle served by `aifinops serve`.
// Paths are relative so the files work under any prefix; nothing is fetched at run time.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1500,
    reportCompressedSize: false,
  },
  server: {
    // `npm run dev` forwards API calls to a local `aifinops serve`.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});
