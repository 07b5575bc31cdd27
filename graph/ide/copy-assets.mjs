// `npm run build`: copy the browser builds the playground page loads from node_modules into static/.
// assets.json maps each served file name to its source; the Python side reads the same file to know
// whether the assets were built. Plain files, no bundler: GraphiQL 3 and React 18 ship UMD builds.
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const assets = JSON.parse(readFileSync(join(here, "assets.json"), "utf8"));
const out = join(here, "static");

rmSync(out, { recursive: true, force: true }); // nothing stale from an earlier version survives
mkdirSync(out);
for (const [name, source] of Object.entries(assets)) {
  copyFileSync(join(here, "node_modules", source), join(out, name));
}
console.log(`copied ${Object.keys(assets).length} files into ${out}`);
