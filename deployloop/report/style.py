"""The report's stylesheet, inlined into its one HTML file (``html.to_html``): light and dark
schemes and narrow screens; no web font, no fetch.
"""

STYLE = """
:root { color-scheme: light dark; --fg: #1f2933; --muted: #616e7c; --bg: #ffffff;
  --line: #d9e2ec; --soft: #f5f7fa; --ok: #0f7b3f; --ok-bg: #e3f6ea; --bad: #b42318;
  --bad-bg: #fdecea; --run: #8a5a00; --run-bg: #fff4d6; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e4e7eb; --muted: #9aa5b1; --bg: #14191f; --line: #323f4b; --soft: #1f2933;
    --ok: #5fd68b; --ok-bg: #12301f; --bad: #ff8a80; --bad-bg: #3a1714; --run: #f7c948;
    --run-bg: #3a2e0b; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 16px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; line-height: 1.25; }
h2 { font-size: 1.15rem; margin: 28px 0 8px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 18px 0 6px; }
code { font: 0.85em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
.verdict { border-radius: 10px; padding: 16px 18px; border: 1px solid var(--line); }
.verdict p { margin: 2px 0; }
.green { background: var(--ok-bg); color: var(--ok); border-color: var(--ok); }
.failing, .empty { background: var(--bad-bg); color: var(--bad); border-color: var(--bad); }
.running { background: var(--run-bg); color: var(--run); border-color: var(--run); }
.meta { color: var(--muted); font-size: 0.9em; }
.verdict .meta { color: inherit; opacity: 0.85; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr));
  gap: 10px; margin: 14px 0 0; }
.card { background: var(--soft); border-radius: 8px; padding: 10px 12px; }
.card b { display: block; font-size: 1.2rem; overflow-wrap: anywhere; }
.card span { color: var(--muted); font-size: 0.85em; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; border: 1px solid var(--line);
  border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; white-space: nowrap; }
th { background: var(--soft); font-weight: 600; }
tr:last-child td { border-bottom: 0; }
td.wrap { white-space: normal; min-width: 14em; max-width: 36em; }
.ok { color: var(--ok); } .bad { color: var(--bad); font-weight: 600; }
ul.fails { padding-left: 1.2em; } ul.fails li { margin: 4px 0; }
figure { margin: 0; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; list-style: none; padding: 0;
  margin: 6px 0; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 50%;
  margin-right: 6px; vertical-align: -1px; }
svg.chart { width: 100%; height: auto; display: block; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg text { fill: var(--muted); font-size: 12px; font-family: inherit; }
svg .series { stroke-width: 2.5; stroke-linejoin: round; }
svg .point { stroke: var(--bg); stroke-width: 1.5; }
dl.budget { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.budget dt { color: var(--muted); } dl.budget dd { margin: 0; }
footer { color: var(--muted); font-size: 0.85em; margin: 32px 0 8px; }
@media (max-width: 600px) { main { padding: 10px; } h1 { font-size: 1.25rem; }
  body { font-size: 14px; } th, td { padding: 5px 8px; }
  .cards { grid-template-columns: repeat(auto-fit, minmax(100px, 1fr)); }
  .card b { font-size: 1.05rem; }
  /* the chart shrinks to half its drawn size on a phone: draw its text and lines bigger */
  svg text { font-size: 22px; } svg text.xlabel { font-size: 18px; }
  svg .series { stroke-width: 4; } svg .point { stroke-width: 2.5; } }
"""
