// axe-core (from npm) run inside the page. The script is evaluated through
// the DevTools protocol, which the page's CSP does not govern, so the board
// is audited under its real policy.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let source = null;

/** axe's violations of any impact on the page as it is now (every rule axe runs by default). */
export async function axeViolations(page) {
  source ??= await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  // Colours are judged as they settle: a toast fading in is not yet its
  // colour. Short entrance effects are waited out; pulses and countdowns
  // (infinite, or longer than a second) are part of the page as it is.
  await page.waitForFunction(() =>
    document.getAnimations().every((a) => {
      const timing = a.effect?.getTiming() ?? {};
      return a.playState !== 'running' || timing.iterations === Infinity || Number(timing.duration) > 1000;
    }),
  );
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(source);
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary?.split('\n').slice(1, 3).join(' ')}`),
  }));
}
