// Vite 7 build of the demo page (www/), the way an application would bundle the package: the bare
// import 'tensorlake-snapshots' is resolved from node_modules (the `browser` condition gives
// pkg/web/auto.js), and the .wasm it references with `new URL(..., import.meta.url)` becomes an
// asset of the build.
//
//   node_modules/.bin/vite build -c tests/demo/vite.config.mjs     # -> target/demo-vite/
//
// The tests build into a temporary folder with DEMO_VITE_OUT.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

const root = fileURLToPath(new URL('../../www', import.meta.url));

export default defineConfig({
  root,
  base: './',
  logLevel: 'warn',
  publicDir: false,
  build: {
    outDir: process.env.DEMO_VITE_OUT || resolve(root, '..', 'target', 'demo-vite'),
    emptyOutDir: true,
    // The package initialises its wasm with a top-level await.
    target: 'es2022',
    reportCompressedSize: false,
  },
  plugins: [
    {
      // The page's import map points the bare specifier at ./pkg/ for the unbundled site; in a
      // bundle nothing is left to map, so it goes.
      name: 'drop-import-map',
      transformIndexHtml: (html) => html.replace(/\s*<!-- Import map:[\s\S]*?-->/, '').replace(/\s*<script type="importmap">[\s\S]*?<\/script>/, ''),
    },
  ],
});
