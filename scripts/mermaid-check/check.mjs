// Renders every ```mermaid block of README.md and docs/*.md with mermaid
// (the npm package, as GitHub and GitLab render it) in headless Debian
// Chromium, and fails with file:line and mermaid's error for any block
// that does not render. Usage: node check.mjs [FILE.md ...]
import { chromium } from "playwright-core";
import { readFileSync, readdirSync, existsSync, mkdtempSync } from "node:fs";
import { join, dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
let files = process.argv.slice(2);
if (files.length === 0) {
  files = [join(root, "README.md")];
  const docs = join(root, "docs");
  if (existsSync(docs)) {
    for (const f of readdirSync(docs).sort()) if (f.endsWith(".md")) files.push(join(docs, f));
  }
}

// Collect the blocks with the line each starts on.
const blocks = [];
for (const file of files) {
  const lines = readFileSync(file, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== "```mermaid") continue;
    const start = i + 1;
    const body = [];
    for (i++; i < lines.length && lines[i].trim() !== "```"; i++) body.push(lines[i]);
    if (i >= lines.length) {
      blocks.push({ where: `${relative(root, file)}:${start}`, code: null });
      continue;
    }
    blocks.push({ where: `${relative(root, file)}:${start}`, code: body.join("\n") });
  }
}
if (blocks.length === 0) {
  console.error("mermaid-check: no mermaid blocks found in", files.map((f) => relative(root, f)).join(", "));
  process.exit(1);
}

const exe = process.env.CHROMIUM || "/usr/bin/chromium";
// A fresh profile each run; without the background-networking flags
// Chromium keeps trying hosts this machine cannot reach.
const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "mermaid-check-")), {
  executablePath: exe,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = 0;
try {
  const page = await browser.newPage();
  await page.setContent("<!doctype html><html><body></body></html>");
  await page.addScriptTag({ path: join(here, "node_modules", "mermaid", "dist", "mermaid.min.js") });
  await page.evaluate(() => window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" }));
  for (const [i, b] of blocks.entries()) {
    if (b.code === null) {
      console.error(`FAIL ${b.where}: unterminated mermaid block`);
      failed++;
      continue;
    }
    const res = await page.evaluate(async ([id, code]) => {
      try {
        const { svg } = await window.mermaid.render(id, code);
        if (svg.includes("Syntax error")) return { ok: false, err: "rendered a syntax-error diagram" };
        // A label mermaid's markdown cannot render (a leading "+ ", "- ", "1. ")
        // is drawn as this text instead: a visible defect.
        if (svg.includes("Unsupported markdown")) return { ok: false, err: "a label renders as 'Unsupported markdown' (a leading list marker?)" };
        return { ok: true, size: svg.length };
      } catch (e) {
        return { ok: false, err: String(e && e.message ? e.message : e) };
      }
    }, [`d${i}`, b.code]);
    if (res.ok) {
      console.log(`ok   ${b.where} (${res.size} bytes of SVG)`);
    } else {
      console.error(`FAIL ${b.where}: ${res.err}`);
      failed++;
    }
  }
} finally {
  await browser.close();
}
console.log(`mermaid-check: ${blocks.length - failed} of ${blocks.length} diagrams rendered`);
process.exit(failed ? 1 : 0);
