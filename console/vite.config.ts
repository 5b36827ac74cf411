import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// Served by `laurel serve` at /console/ from assets built into the binary. No inline
// scripts or styles (the console's Content-Security-Policy has no `unsafe-inline`), no
// module-preload polyfill (it is an inline script), hashed file names (cached for good).
export default defineConfig({
  base: "/console/",
  plugins: [preact()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: false,
    target: "es2022",
  },
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.ts", "test/**/*.test.tsx"],
  },
});
