import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UI_ASSET_FILES } from '../../src/backoffice-identity/ui/ui-assets.generated.js';
import { escapeHtml, html, jsonScript } from '../../src/backoffice-identity/ui/ui-html.js';

const ROOT = join(__dirname, '..', '..');

describe('sign-in screen assets and HTML helpers', () => {
  it('ui-assets.generated.ts matches src/backoffice-identity/ui/assets/ (run node tools/build-ui-assets.mjs after editing them)', () => {
    expect(() => execFileSync(process.execPath, [join(ROOT, 'tools', 'build-ui-assets.mjs'), '--check'], { stdio: 'pipe' })).not.toThrow();
    const source = readFileSync(join(ROOT, 'src', 'backoffice-identity', 'ui', 'assets', 'pages.js'), 'utf8');
    expect(UI_ASSET_FILES['pages.js'].body).toBe(source);
    expect(Object.keys(UI_ASSET_FILES).sort()).toEqual(['pages.js', 'passkeys.js', 'session.css', 'session.js', 'ui.css']);
  });

  it('ships browser scripts that parse, use no eval-like constructs and load nothing from other hosts', () => {
    for (const file of ['pages.js', 'passkeys.js', 'session.js']) {
      const body = UI_ASSET_FILES[file].body;
      expect(() => new Function(body), file).not.toThrow();
      expect(body, file).not.toMatch(/\beval\(|new Function|innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
      expect(body, file).not.toMatch(/https?:\/\//);
    }
    for (const file of ['ui.css', 'session.css']) expect(UI_ASSET_FILES[file].body, file).not.toMatch(/@import|url\(/);
  });

  it('html`` escapes every interpolated value; jsonScript cannot be closed by its data', () => {
    const evil = `"><script>alert('x')</script>&`;
    expect(html`<p title="${evil}">${evil}</p>`.value).toBe(`<p title="${escapeHtml(evil)}">${escapeHtml(evil)}</p>`);
    expect(html`<p>${evil}</p>`.value).not.toContain('<script>');
    expect(html`<div>${html`<b>${'<i>'}</b>`}</div>`.value).toBe('<div><b>&lt;i&gt;</b></div>');
    const block = jsonScript('cfg', { returnUrl: '/</script><script>alert(1)</script>', line: '\u2028' }).value;
    expect(block.match(/<\/script>/g)).toHaveLength(1);
    const json = /<script type="application\/json" id="cfg">(.*)<\/script>/.exec(block)![1];
    expect(JSON.parse(json)).toEqual({ returnUrl: '/</script><script>alert(1)</script>', line: '\u2028' });
  });
});
