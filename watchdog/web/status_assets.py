"""The status page's stylesheet and script, served from memory (nothing is downloaded).

The script polls ``?partial=1`` every few seconds and swaps the ``<main>`` content;
it stops once a window page shows a terminal phase. Without it the page still reads
(reload by hand). The CSS is mobile first: one column, wider screens get a grid.
"""

from __future__ import annotations

POLL_MS = 2000

STATUS_JS = f"""\
(function () {{
  "use strict";
  var main = document.getElementById("main");
  var live = document.getElementById("live");
  function stamp(text, cls) {{ live.textContent = text; live.className = "live " + cls; }}
  function poll() {{
    if (main.dataset.terminal === "1" && location.pathname !== "/") {{
      stamp("final", "done");
      return;
    }}
    fetch(location.pathname + "?partial=1", {{credentials: "same-origin", cache: "no-store"}})
      .then(function (r) {{
        if (!r.ok) {{ throw new Error("HTTP " + r.status); }}
        main.dataset.terminal = r.headers.get("X-Watchdog-Terminal") || "0";
        return r.text();
      }})
      .then(function (html) {{
        main.innerHTML = html;
        stamp("live " + new Date().toLocaleTimeString(), "ok");
      }})
      .catch(function (e) {{ stamp("offline (" + e.message + ")", "bad"); }})
      .then(function () {{ setTimeout(poll, {POLL_MS}); }});
  }}
  setTimeout(poll, {POLL_MS});
}})();
"""

STATUS_CSS = """\
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d232b; --muted:#667085; --line:#d9dee5;
  --ok:#1a7f37; --pending:#b7791f; --firing:#c62828; --inconclusive:#6b7280; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  background:var(--bg); color:var(--ink); }
header { display:flex; justify-content:space-between; align-items:center;
  padding:.6rem 1rem; background:#101828; color:#fff; }
header a.home { color:#fff; font-weight:600; text-decoration:none; }
.live { font-size:.8rem; opacity:.85; } .live.bad { color:#fca5a5; }
main { padding:.75rem; max-width:1200px; margin:0 auto; }
h1 { font-size:1.1rem; margin:1rem 0 .5rem; }
h2 { font-size:1.15rem; margin:0 0 .25rem; } h3 { font-size:1rem; margin:.25rem 0; }
a { color:#1d4ed8; }
.window { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:.75rem; margin-bottom:1rem; }
.window.rolled_back, .window.rollback_failed, .window.rollback_ineffective,
  .window.rolling_back, .window.confirming { border-left:6px solid var(--firing); }
.window.rollback_failed, .window.rollback_ineffective,
  .window.expired_while_held { border-left:6px solid var(--firing); }
.window.watching, .window.passed { border-left:6px solid var(--ok); }
.window.held, .window.awaiting_approval, .window.inconclusive,
  .window.would_have_rolled_back { border-left:6px solid var(--pending); }
.meta, .muted, .why { color:var(--muted); font-size:.85rem; margin:.2rem 0; }
.reason { margin:.25rem 0; font-weight:500; }
.badge { display:inline-block; font-size:.75rem; padding:.1rem .45rem; border-radius:999px;
  background:#e5e7eb; color:#111; vertical-align:middle; white-space:nowrap; }
.badge.ok, .badge.watching, .badge.passed, .badge.rollback_succeeded { background:#dcfce7;
  color:var(--ok); }
.badge.pending, .badge.held, .badge.awaiting_approval, .badge.confirming,
  .badge.shadow, .badge.inconclusive, .badge.would_have_rolled_back {
  background:#fef3c7; color:var(--pending); }
.badge.firing, .badge.rolled_back, .badge.rolling_back, .badge.rollback_ineffective,
  .badge.rollback_failed, .badge.expired_while_held, .badge.fired {
  background:#fee2e2; color:var(--firing); }
.rules { display:grid; grid-template-columns:1fr; gap:.6rem; margin:.5rem 0; }
@media (min-width: 720px) { .rules { grid-template-columns:repeat(auto-fit, minmax(330px,
  1fr)); } }
.rule { border:1px solid var(--line); border-radius:8px; padding:.5rem; }
.rule.firing { border-color:var(--firing); } .rule.pending { border-color:var(--pending); }
.nums { font-size:.85rem; margin:.2rem 0; } .for { font-size:.85rem; margin:.2rem 0; }
progress { width:8rem; vertical-align:middle; }
svg.graph { width:100%; max-width:620px; height:auto; display:block; margin:.25rem 0; }
svg .plot { fill:#fbfcfd; stroke:var(--line); }
svg .grid { stroke:#eef0f3; } svg .axis-x line { stroke:#98a2b3; }
svg .values { fill:none; stroke:#2563eb; stroke-width:1.6; }
svg .threshold { stroke:var(--firing); stroke-dasharray:5 3; stroke-width:1.2; }
svg .baseline { stroke:#9ca3af; stroke-dasharray:2 2; }
svg .nodata { fill:#e4e7ec; opacity:.8; } svg .nodata-label { fill:#475467; font-weight:600; }
svg text { font-size:11px; fill:#475467; font-family:system-ui, sans-serif; }
svg .axis-title { fill:var(--muted); font-style:italic; }
svg .threshold-label { fill:var(--firing); font-weight:600; }
svg .marker line { stroke:#475467; stroke-dasharray:3 2; stroke-width:1.2; }
svg .marker text { font-weight:600; }
svg .marker.deploy line { stroke:#2563eb; } svg .marker.deploy text { fill:#1d4ed8; }
svg .marker.rollback line, svg .marker.failed line { stroke:var(--firing); }
svg .marker.rollback text, svg .marker.failed text { fill:var(--firing); }
svg .marker.rolled-back line { stroke:#7c3aed; } svg .marker.rolled-back text { fill:#6d28d9; }
svg .marker.recovered line { stroke:var(--ok); } svg .marker.recovered text { fill:var(--ok); }
svg .marker.held line, svg .marker.would line { stroke:var(--pending); }
svg .marker.would text { fill:var(--pending); }
svg .marker.held line { stroke:var(--pending); } svg .marker.held text { fill:var(--pending); }
svg .pt { fill:#2563eb; } svg .pt.pending { fill:var(--pending); }
svg .pt.firing { fill:var(--firing); } svg .pt.inconclusive { fill:var(--inconclusive); }
svg .band { fill:#93c5fd; opacity:.45; } svg .band.firing { fill:#fca5a5; opacity:.6; }
svg .diff { fill:none; stroke:#1d4ed8; stroke-width:1.6; }
svg .diff.firing { stroke:var(--firing); } svg .zero { stroke:#667085; }
svg .caption { fill:var(--muted); font-style:italic; }
.verdict { border-radius:8px; padding:.6rem .75rem; margin:.4rem 0 .6rem;
  border:1px solid var(--line); background:#f8fafc; }
.verdict .sentence { font-size:1rem; font-weight:600; margin:0 0 .4rem; }
@media (min-width: 720px) { .verdict .sentence { font-size:1.12rem; } }
.verdict.good { background:#f0fdf4; border-color:#86efac; }
.verdict.bad { background:#fef2f2; border-color:#fca5a5; }
.verdict.bad .sentence { color:#991b1b; }
.verdict.amber { background:#fffbeb; border-color:#fcd34d; }
.verdict.amber .sentence { color:#92400e; }
.next h3 { font-size:.85rem; text-transform:uppercase; letter-spacing:.04em;
  color:var(--muted); margin:.2rem 0; }
.next ul { margin:0; padding-left:1.1rem; font-size:.9rem; }
.next li { margin:.15rem 0; }
pre.cmd { background:#0f172a; color:#e2e8f0; padding:.35rem .5rem; border-radius:6px;
  margin:.2rem 0; white-space:pre-wrap; overflow-wrap:anywhere; font-size:.82rem; }
header .tz { font-size:.75rem; opacity:.7; margin-left:auto; margin-right:1rem; }
header form.signout { margin:0 0 0 1rem; }
header form.signout button { font:inherit; font-size:.75rem; color:#fff; cursor:pointer;
  background:transparent; border:1px solid rgba(255,255,255,.5); border-radius:4px; }
.timeline { list-style:none; padding:0; margin:.25rem 0; font-size:.85rem; }
.timeline li { border-left:3px solid var(--line); padding:.2rem .5rem; margin:.15rem 0; }
.timeline li.rule_firing, .timeline li.rollback_started, .timeline li.step_failed,
.timeline li.rollback_failed, .timeline li.rollback_ineffective { border-color:var(--firing); }
.timeline li.rollback_succeeded, .timeline li.step_succeeded,
.timeline li.recovered { border-color:var(--ok); }
.timeline li.rule_pending, .timeline li.held, .timeline li.would_roll_back,
.timeline li.recovery_unconfirmed { border-color:var(--pending); }
.kind { font-weight:600; } time { color:var(--muted); font-variant-numeric:tabular-nums; }
dl { display:flex; flex-wrap:wrap; gap:0 .75rem; margin:.1rem 0; color:var(--muted); }
dt::after { content:":"; } dd { margin:0; }
pre.output { background:#0f172a; color:#e2e8f0; padding:.4rem; border-radius:6px;
  overflow-x:auto; white-space:pre-wrap; word-break:break-word; margin:.2rem 0; }
table.recent { width:100%; border-collapse:collapse; background:var(--card); font-size:.9rem; }
table.recent .badge { white-space:normal; }
table.recent td:last-child { white-space:nowrap; }
@media (max-width: 600px) { table.recent .env { display:none; } }
table.recent th, table.recent td { text-align:left; padding:.35rem;
  border-bottom:1px solid var(--line); }
"""
